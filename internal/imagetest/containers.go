package imagetest

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// RemoveByLabel force-removes every container carrying any of labels
// ("key=value"), reporting failures as test errors. Tests register it
// with t.Cleanup so nothing they start outlives them.
func RemoveByLabel(t testing.TB, docker *client.Client, labels ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range labels {
		cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", l))})
		if err != nil {
			t.Errorf("cleanup: list %s: %v", l, err)
			return
		}
		for _, c := range cs {
			if err := docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Errorf("cleanup: remove %s: %v", c.ID[:12], err)
			}
		}
	}
}

// Bystander starts a container of image named name ("" lets Docker name
// it) with labels and TestLabel, but none of hoist's: the agent must never
// touch it. The caller removes it, e.g. with RemoveByLabel.
func Bystander(t testing.TB, docker *client.Client, image, name string, labels map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := map[string]string{TestLabel: "1"}
	for k, v := range labels {
		all[k] = v
	}
	resp, err := docker.ContainerCreate(ctx, &container.Config{Image: image, Labels: all}, nil, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// Running reports whether the container id exists and runs.
func Running(t testing.TB, docker *client.Client, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ci, err := docker.ContainerInspect(ctx, id)
	return err == nil && ci.State != nil && ci.State.Running
}
