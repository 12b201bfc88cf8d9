// Package auth issues and revokes hoist's NATS credentials with NATS
// decentralized JWT auth: an operator, a system account (SYS), the hoist
// account (HOIST, with JetStream) and one user JWT per credential. Servers
// trust the operator and keep accounts in a full directory resolver, so a
// credential is issued without telling any server, and revoked by pushing
// the updated account JWT to a running one: no restart either way.
//
// Every permission is on subjects, never on message bodies. Permissions
// maps each role (admin, deployer, agent, balancer, reader) to what its
// users may publish and subscribe to; the table in permissions.go is the
// whole access policy, and it is pure so that it is tested as a table.
//
// Layout of an auth directory (0700; every key and creds file 0600):
//
//	operator.jwt            the operator, trusted by every server
//	accounts/<pub>.jwt      the SYS and HOIST account JWTs (preloaded into resolvers)
//	keys/*.nk               operator, account and signing key seeds
//	admin.creds sys.creds server.creds
//	users.json              the registry of issued credentials
//
// A server needs only operator.jwt, accounts/ and server.creds; the seeds
// in keys/ stay where credentials are issued.
//
// This package must never overwrite an existing key, and never import the
// events package: it builds alone, and events learns the few server
// options it needs from cmd/hoist.
package auth
