package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hoist-dev/hoist/events"
)

// setup creates or updates the streams and the leases bucket.
func (s *Store) setup(ctx context.Context, opts Options) error {
	keepReplicas := opts.Replicas <= 0
	if keepReplicas {
		opts.Replicas = 1
	}
	if opts.ScoreHistory <= 0 {
		opts.ScoreHistory = DefaultScoreHistory
	}
	if opts.ReportsMaxAge <= 0 {
		opts.ReportsMaxAge = DefaultReportsMaxAge
	}
	configs := []jetstream.StreamConfig{{
		// The config history is the source of truth: no limits (limit-based
		// eviction would ignore DenyDelete) and no way to delete or purge.
		Name:        events.EventsStream,
		Description: "hoist config events: scope changes and node drains, kept forever",
		Subjects: []string{
			events.SubjectRoot + ".scope.*.*.*.*.*", events.SubjectRoot + ".node.*.*.*",
			events.SubjectRoot + ".scope.*.*.*.*", events.SubjectRoot + ".node.*.*", // written before actors joined the subject
		},
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
		Duplicates:  duplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
	}, {
		Name:              events.ScoresStream,
		Description:       "hoist backend scores: a bounded history per backend",
		Subjects:          []string{events.SubjectRoot + ".score.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		Duplicates:        duplicateWindow,
		MaxMsgsPerSubject: opts.ScoreHistory,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}, {
		Name:              events.ReportsStream,
		Description:       "hoist node status per scope, with an age limit",
		Subjects:          []string{events.SubjectRoot + ".status.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		MaxMsgsPerSubject: 4,
		MaxAge:            opts.ReportsMaxAge,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}, {
		// Backend sets stay until their node replaces or withdraws them: an
		// age limit would silently drop static backends (hoist announce).
		Name:              events.BackendsStream,
		Description:       "hoist backends: the latest set per scope and node",
		Subjects:          []string{events.SubjectRoot + ".backends.*.*.*.*"},
		Storage:           jetstream.FileStorage,
		Replicas:          opts.Replicas,
		MaxMsgsPerSubject: 4,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
	}, statsStreamConfig(opts.Replicas)}
	for _, cfg := range configs {
		gctx, release := s.denials.guard(ctx, "$JS.API.STREAM.INFO."+cfg.Name, "$JS.API.STREAM.CREATE."+cfg.Name, "$JS.API.STREAM.UPDATE."+cfg.Name)
		err := ensureStream(gctx, s.js, keepReplicas, cfg)
		err = denied(gctx, err)
		release()
		if err != nil {
			return unanswered(noQuorum(err))
		}
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = defaultLeaseTTL
	}
	kvStream := "KV_" + leasesBucket
	gctx, release := s.denials.guard(ctx, "$JS.API.STREAM.INFO."+kvStream, "$JS.API.STREAM.CREATE."+kvStream, "$JS.API.STREAM.UPDATE."+kvStream)
	defer release()
	return unanswered(noQuorum(denied(gctx, s.ensureLeases(gctx, keepReplicas, opts.Replicas, opts.LeaseTTL))))
}

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
