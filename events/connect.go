package events

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

// DefaultURL is where hoist looks for NATS when nothing else is configured.
const DefaultURL = "nats://127.0.0.1:4222"

// ConnectOptions says how to reach NATS. Every field maps to a HOIST_NATS_*
// variable in the CLI.
type ConnectOptions struct {
	URL       string
	Name      string // client name shown in server monitoring
	User      string
	Password  string
	Token     string
	CredsFile string // also sets the inbox prefix: see Identity
	NKeyFile  string
	TLSCA     string
	TLSCert   string
	TLSKey    string
	// Daemon makes the connection reconnect forever with backoff, for
	// agents and balancers. Commands give up quickly instead.
	Daemon bool
	Logger *slog.Logger
}

// UnreachableError says NATS could not be reached at a URL.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach NATS at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Connect dials NATS.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{nats.Name(o.Name), nats.Timeout(3 * time.Second)}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
		name, err := o.Identity()
		if err != nil {
			return nil, err
		}
		// A hoist credential may subscribe only under its own inbox
		// prefix. Creds from elsewhere whose name could not be an actor
		// (one subject token) keep the default inbox.
		if ValidateActor(name) == nil {
			opts = append(opts, nats.CustomInboxPrefix(InboxPrefix(name)))
		}
	case o.NKeyFile != "":
		opt, err := nats.NkeyOptionFromSeed(o.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("nkey %s: %w", o.NKeyFile, err)
		}
		opts = append(opts, opt)
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.Daemon {
		opts = append(opts,
			nats.MaxReconnects(-1),
			nats.CustomReconnectDelay(func(attempts int) time.Duration {
				return min(time.Duration(attempts)*250*time.Millisecond, 5*time.Second)
			}),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil { // nil on a deliberate Close
					log.Warn("disconnected from NATS, reconnecting", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}),
		)
	} else {
		opts = append(opts, nats.MaxReconnects(5), nats.ReconnectWait(200*time.Millisecond))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		if errors.Is(err, nats.ErrNoServers) || isDialError(err) {
			return nil, &UnreachableError{URL: o.URL, Err: err}
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", o.URL, err)
	}
	return nc, nil
}

// InboxPrefix is the inbox prefix of the credential called name: hoist
// grants each credential subscriptions under its own prefix only.
func InboxPrefix(name string) string { return "_INBOX_" + name }

// Identity is the name in the user JWT of the creds file (CredsName). It
// is "" without a creds file.
func (o ConnectOptions) Identity() (string, error) {
	if o.CredsFile == "" {
		return "", nil
	}
	return CredsName(o.CredsFile)
}

// CredsName is the name in the user JWT of a creds file: hoist names a
// credential after its holder, who publishes as that actor and receives
// under InboxPrefix(name).
func CredsName(credsFile string) (string, error) {
	b, err := os.ReadFile(credsFile)
	if err != nil {
		return "", fmt.Errorf("read NATS credentials: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return "", fmt.Errorf("NATS credentials %s: %w", credsFile, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return "", fmt.Errorf("NATS credentials %s: %w", credsFile, err)
	}
	return uc.Name, nil
}

func isDialError(err error) bool {
	var netErr interface{ Timeout() bool }
	return errors.As(err, &netErr) || errors.Is(err, nats.ErrTimeout)
}
