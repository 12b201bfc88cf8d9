package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hoist-dev/hoist/deploy"
	"github.com/hoist-dev/hoist/events"
	"github.com/hoist-dev/hoist/internal/imagetest"
)

// A hoist dev that runs processes removes the Docker replicas an earlier
// start left running for its node, and only those: a container of another
// node stays.
func TestDevRemovesDockerReplicasWhenRunningProcesses(t *testing.T) {
	docker := imagetest.RequireDocker(t)
	image := imagetest.TestImage(t)
	node, other := agtNode(), agtNode()
	t.Cleanup(func() { imagetest.RemoveByLabel(t, docker, deploy.LabelNode+"="+node, deploy.LabelNode+"="+other) })
	rs := deploy.ReplicaSpec{Scope: events.MustParseScope("demo.dev.web"), Index: 0, Revision: 1, SpecHash: "abc"}
	left := imagetest.Bystander(t, docker, image, "", deploy.Labels(node, rs))
	kept := imagetest.Bystander(t, docker, image, "", deploy.Labels(other, rs))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	removeDockerReplicas(ctx, node, slog.New(slog.DiscardHandler))
	if _, err := docker.ContainerInspect(ctx, left); err == nil {
		t.Errorf("the replica of %s is still there", node)
	}
	if !imagetest.Running(t, docker, kept) {
		t.Errorf("the replica of another node %s was touched", other)
	}
}
