// Package natsd runs the embedded nats-server that hoist server and hoist
// dev start (and the tests, through internal/natstest): JetStream on disk,
// optional clustering with secured routes, and decentralized JWT auth.
//
// It owns no signals (the server runs with NoSigs: the host program stops
// it through Shutdown) and knows nothing of hoist's streams: package
// events/store sets those up once a client connects.
package natsd
