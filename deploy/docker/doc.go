// Package docker is the deploy.Runtime that runs replicas as containers
// through the Docker Engine API.
//
// It lists, stops and removes only containers labelled hoist.managed=true
// with its own hoist.node (see deploy.Labels), so several agents, or a
// human's containers, can share one engine. Every engine call has its own
// timeout; images are pulled when missing, and a pull that failed is not
// retried for the same revision until its backoff passes.
package docker
