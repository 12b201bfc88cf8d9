package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"syscall"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"

	"github.com/hoist-dev/hoist/events"
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

// TLSError is a TLS handshake with NATS that failed. Problem says what is
// wrong in the words of the CLI's flags, and Err is the error that shows it.
type TLSError struct {
	URL     string
	Problem string
	Err     error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("connect to NATS at %s: tls: %s (%v)", e.URL, e.Problem, e.Err)
}

func (e *TLSError) Unwrap() error { return e.Err }

// How a client tells a dead server from a quiet one: a ping every
// pingInterval, and the connection given up after maxPingsOut unanswered.
const (
	pingInterval = 2 * time.Second
	maxPingsOut  = 3
)

// Connect dials NATS.
func Connect(o ConnectOptions) (*nats.Conn, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(o.Name), nats.Timeout(3 * time.Second),
		// A server cut off by a partition sends no reset: without pings
		// the client would notice only after nats.go's default 2 minutes
		// times 2, publishing into a dead socket meanwhile. Now it
		// notices within about 6 s and reconnects to a server that works.
		nats.PingInterval(pingInterval), nats.MaxPingsOutstanding(maxPingsOut),
		// nats.go prints asynchronous errors (a broken pipe during a
		// server restart) to stderr by default; they go to the log.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			level := slog.LevelDebug
			if errors.Is(err, nats.ErrSlowConsumer) {
				level = slog.LevelWarn
			}
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Log(context.Background(), level, "NATS client error", "err", err, "subject", subject)
		}),
	}
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
		if events.ValidateActor(name) == nil {
			opts = append(opts, nats.CustomInboxPrefix(inboxPrefix(name)))
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
		// Before the dial check: a TLS alert from the server arrives as
		// a *net.OpError, which looks like a network failure.
		if problem, cause, ok := tlsProblem(err, o); ok {
			return nil, &TLSError{URL: o.URL, Problem: problem, Err: cause}
		}
		if errors.Is(err, nats.ErrNoServers) || isDialError(err) {
			return nil, &UnreachableError{URL: o.URL, Err: err}
		}
		return nil, fmt.Errorf("connect to NATS at %s: %w", o.URL, err)
	}
	return nc, nil
}

// inboxPrefix is the inbox prefix of the credential called name: hoist
// grants each credential subscriptions under its own prefix only.
func inboxPrefix(name string) string { return "_INBOX_" + name }

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
// under inboxPrefix(name).
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

// tlsProblem names the cause of a failed TLS handshake: a server
// certificate from a CA the client does not trust, one that does not name
// the host dialled, or a client certificate the server wants and did not
// get. It returns the error that shows the cause.
func tlsProblem(err error, o ConnectOptions) (problem string, cause error, ok bool) {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknownCA):
		if o.TLSCA == "" {
			return "the server's certificate is not signed by a CA this host trusts: give its CA with --nats-ca", unknownCA, true
		}
		return "the server's certificate is not signed by --nats-ca " + o.TLSCA, unknownCA, true
	case errors.As(err, &hostname):
		return "the server's certificate does not name " + hostname.Host + ": connect by a name or address it holds, or reissue it", hostname, true
	case errors.As(err, &invalid):
		return "the server's certificate is not valid", invalid, true
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "the server does not offer TLS, and --nats-ca, --nats-cert or a tls:// URL ask for it", err, true
	}
	// A server that wants a client certificate and gets none sends
	// certificate_required (handshake_failure before TLS 1.3) and hangs
	// up. The client may see only the hang-up: with TLS 1.3 its handshake
	// is done before the server checks the certificate. A Go client sends
	// no certificate at all when its CA is not among those the server
	// asks for, so a foreign client certificate ends the same way.
	var noCert bool
	switch alert, alertErr := remoteAlert(err); {
	case alertErr != nil:
		cause, noCert = alertErr, alert == alertCertificateRequired || alert == alertHandshakeFailure
	case closedAfterHandshake(err):
		cause, noCert = err, true
	default:
		return "", nil, false
	}
	switch {
	case noCert && o.TLSCert == "":
		return "the server requires a client certificate (mutual TLS) and none was given: pass --nats-cert and --nats-key", cause, true
	case noCert:
		return "the server requires a client certificate signed by its CA, and --nats-cert " + o.TLSCert + " is not", cause, true
	case o.TLSCert != "":
		return "the server refused the client certificate --nats-cert " + o.TLSCert, cause, true
	}
	return "the server ended the TLS handshake", cause, true
}

// TLS alerts (RFC 8446, section 6).
const (
	alertHandshakeFailure    tls.AlertError = 40
	alertCertificateRequired tls.AlertError = 116
)

// remoteAlert is the TLS alert the server sent, if err carries one, and
// the error that carries it. crypto/tls reports a received alert as a
// *net.OpError "remote error" whose Err has an unexported uint8 type
// holding the alert's code.
func remoteAlert(err error) (tls.AlertError, *net.OpError) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, nil
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return 0, nil
	}
	return tls.AlertError(v.Uint()), op
}

// closedAfterHandshake reports nats.go's "connection closed by remote
// after TLS handshake".
func closedAfterHandshake(err error) bool {
	return errors.Is(err, nats.ErrTLS) &&
		(errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
}

func isDialError(err error) bool {
	var netErr interface{ Timeout() bool }
	return errors.As(err, &netErr) || errors.Is(err, nats.ErrTimeout)
}
