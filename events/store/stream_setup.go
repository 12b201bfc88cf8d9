package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ensureStream creates the stream of cfg, or updates it when its settings
// differ from cfg's.
func ensureStream(ctx context.Context, js jetstream.JetStream, keepReplicas bool, cfg jetstream.StreamConfig) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg.MaxConsumers = MaxConsumers
	err := setUpStream(ctx, js, keepReplicas, cfg)
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse {
		// Another process made it between the lookup and the create (a
		// fleet starting at once): look again, and take it as it is.
		err = setUpStream(ctx, js, keepReplicas, cfg)
	}
	if err != nil {
		return fmt.Errorf("set up stream %s: %w", cfg.Name, err)
	}
	return nil
}

func setUpStream(ctx context.Context, js jetstream.JetStream, keepReplicas bool, cfg jetstream.StreamConfig) error {
	if st, err := js.Stream(ctx, cfg.Name); err == nil {
		have := st.CachedInfo().Config
		if keepReplicas {
			cfg.Replicas = have.Replicas
		}
		// Every agent and balancer opens the store when it starts; an
		// update the server has to process (and write) even when nothing
		// changes made a fleet's restart queue behind ~10 ms per stream
		// per process.
		if sameStreamConfig(have, cfg) {
			return nil
		}
	}
	_, err := js.CreateOrUpdateStream(ctx, cfg)
	return err
}

// sameStreamConfig reports whether have already is cfg in every field
// Open sets.
func sameStreamConfig(have, cfg jetstream.StreamConfig) bool {
	// The server stores its defaults for what the config leaves zero.
	if cfg.MaxMsgsPerSubject == 0 {
		cfg.MaxMsgsPerSubject = -1
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = duplicateWindow
		if cfg.MaxAge > 0 && cfg.MaxAge < duplicateWindow {
			cfg.Duplicates = cfg.MaxAge
		}
	}
	return have.Description == cfg.Description && slices.Equal(have.Subjects, cfg.Subjects) &&
		have.Storage == cfg.Storage && have.Replicas == max(cfg.Replicas, 1) && have.Duplicates == cfg.Duplicates &&
		have.DenyDelete == cfg.DenyDelete && have.DenyPurge == cfg.DenyPurge && have.AllowDirect == cfg.AllowDirect &&
		have.MaxMsgsPerSubject == cfg.MaxMsgsPerSubject && have.Discard == cfg.Discard && have.MaxAge == cfg.MaxAge &&
		have.MaxConsumers == cfg.MaxConsumers
}
