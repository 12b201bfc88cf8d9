package nodeagent

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hoist-dev/hoist/events"
)

// Node is what a node.toml says: who this node is, which scopes it serves
// and where others reach its replicas.
type Node struct {
	Name      string
	Scopes    []events.Scope // sorted, no duplicates, at least one
	Advertise string         // host (IP or DNS name); default 127.0.0.1
}

// DefaultAdvertise is the advertise host when node.toml names none.
const DefaultAdvertise = "127.0.0.1"

// ConfigError is a bad config file: it names the file, the line when known,
// the field and what is wrong with it.
type ConfigError struct {
	File    string
	Line    int // 0 when unknown
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Problem
	}
	return fmt.Sprintf("%s: %s %s", loc, e.Field, e.Problem)
}

// Is makes errors.Is(err, events.ErrInvalid) true, so the CLI reports a bad
// config as bad input.
func (e *ConfigError) Is(target error) bool { return target == events.ErrInvalid }

// nodeFile is the TOML form of node.toml. The typed fields validate
// themselves while decoding, so their errors carry the line.
type nodeFile struct {
	Version     tomlString    `toml:"version"`
	Name        nodeName      `toml:"name"`
	Client      scopeToken    `toml:"client"`
	Environment scopeToken    `toml:"environment"`
	Solution    scopeToken    `toml:"solution"`
	Scopes      scopeList     `toml:"scopes"`
	Advertise   advertiseHost `toml:"advertise"`
}

type nodeName string

func (n *nodeName) UnmarshalTOML(v any) error {
	b, err := tomlText(v)
	if err != nil {
		return err
	}
	if err := events.ValidateNodeName(string(b)); err != nil {
		return err
	}
	*n = nodeName(b)
	return nil
}

type scopeToken string

func (t *scopeToken) UnmarshalTOML(v any) error {
	b, err := tomlText(v)
	if err != nil {
		return err
	}
	// A token is valid when it makes a valid scope in any position.
	if _, err := events.ParseScope(string(b) + ".x.x"); err != nil {
		var se *events.ScopeError
		if errors.As(err, &se) {
			return fmt.Errorf("%q %s", b, se.Rule)
		}
		return err
	}
	*t = scopeToken(b)
	return nil
}

type scopeString struct{ events.Scope }

func (s *scopeString) UnmarshalTOML(v any) error {
	b, err := tomlText(v)
	if err != nil {
		return err
	}
	sc, err := events.ParseScope(b)
	if err != nil {
		return err
	}
	s.Scope = sc
	return nil
}

type advertiseHost string

func (a *advertiseHost) UnmarshalTOML(v any) error {
	b, err := tomlText(v)
	if err != nil {
		return err
	}
	if err := ValidateAdvertise(b); err != nil {
		return err
	}
	*a = advertiseHost(b)
	return nil
}

// scopeList is scopes = [...]: an array of scope strings.
type scopeList []scopeString

func (l *scopeList) UnmarshalTOML(v any) error {
	arr, ok := v.([]any)
	if !ok {
		return fmt.Errorf("must be an array of scopes, not %s", tomlType(v))
	}
	out := make(scopeList, len(arr))
	for i, e := range arr {
		if err := out[i].UnmarshalTOML(e); err != nil {
			return fmt.Errorf("entry %d: %w", i+1, err)
		}
	}
	*l = out
	return nil
}

// tomlString is a string that refuses any other TOML type.
type tomlString string

func (t *tomlString) UnmarshalTOML(v any) error {
	s, err := tomlText(v)
	*t = tomlString(s)
	return err
}

// tomlText is the string a TOML value must be. Every field of the config
// files decodes itself through it (toml.Unmarshaler), so a value of another
// type fails inside the decoder as a toml.ParseError with the key and its
// line: tomlError never has to read the line out of a message.
func tomlText(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("must be a string, not %s", tomlType(v))
	}
	return s, nil
}

func tomlType(v any) string {
	switch v.(type) {
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}

// ValidateAdvertise checks an advertise host: an IP address or a DNS name,
// without a port.
func ValidateAdvertise(h string) error {
	if strings.Contains(h, ":") && net.ParseIP(h) == nil {
		return fmt.Errorf("%q must be a host without a port (an IP address or a DNS name)", h)
	}
	if err := events.ValidateBackend(net.JoinHostPort(h, "1")); err != nil {
		return fmt.Errorf("%q is not an IP address or a DNS name", h)
	}
	return nil
}

// parseNode parses a node.toml. file names it in errors; hostname is the
// default node name (lowercased, up to its first dot).
func parseNode(file string, data []byte, hostname string) (Node, error) {
	var nf nodeFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&nf)
	if err != nil {
		return Node{}, tomlError(file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		key := und[0].String()
		return Node{}, &ConfigError{File: file, Line: lineOf(data, und[0]), Field: strconvQuote(key),
			Problem: "is not a known key (known: version, name, client, environment, solution, scopes, advertise)"}
	}
	fail := func(key, problem string) (Node, error) {
		return Node{}, &ConfigError{File: file, Line: lineOf(data, toml.Key{key}), Field: key, Problem: problem}
	}
	if md.IsDefined("version") && nf.Version != "1" {
		return fail("version", fmt.Sprintf("is %q; this hoist reads version \"1\"", nf.Version))
	}

	n := Node{Name: string(nf.Name), Advertise: string(nf.Advertise)}
	if n.Name == "" {
		n.Name = defaultNodeName(hostname)
		if err := events.ValidateNodeName(n.Name); err != nil {
			return Node{}, &ConfigError{File: file, Field: "name",
				Problem: fmt.Sprintf("is not set and the hostname %q does not make a valid node name (%v); set name = \"...\"", hostname, err)}
		}
	}
	if n.Advertise == "" {
		n.Advertise = DefaultAdvertise
	}

	triple := []string{string(nf.Client), string(nf.Environment), string(nf.Solution)}
	names := []string{"client", "environment", "solution"}
	set := 0
	for _, v := range triple {
		if v != "" {
			set++
		}
	}
	switch {
	case set > 0 && len(nf.Scopes) > 0:
		return fail("scopes", "cannot be combined with client/environment/solution: use one or the other")
	case set > 0 && set < 3:
		for i, v := range triple {
			if v == "" {
				return fail(names[i], "is missing: client, environment and solution go together")
			}
		}
	case set == 3:
		n.Scopes = []events.Scope{{Client: triple[0], Environment: triple[1], Solution: triple[2]}}
	case len(nf.Scopes) == 0:
		return Node{}, &ConfigError{File: file, Problem: "names no scope: set client, environment and solution, or scopes = [\"client.environment.solution\", ...]"}
	default:
		for i, s := range nf.Scopes {
			if slices.Contains(n.Scopes, s.Scope) {
				return fail("scopes", fmt.Sprintf("lists %s twice (entries %d and %d)", s.Scope, slices.Index(n.Scopes, s.Scope)+1, i+1))
			}
			n.Scopes = append(n.Scopes, s.Scope)
		}
	}
	slices.SortFunc(n.Scopes, func(a, b events.Scope) int { return strings.Compare(a.String(), b.String()) })
	return n, nil
}

// defaultNodeName derives a node name from a hostname: lowercase, up to
// the first dot.
func defaultNodeName(hostname string) string {
	h := strings.ToLower(hostname)
	if i := strings.IndexByte(h, '.'); i >= 0 {
		h = h[:i]
	}
	return h
}

// AgentFile is what config.toml says.
type AgentFile struct {
	// ReferenceFile is the agent's local state file, resolved against the
	// config file's directory. "" when the config names none.
	ReferenceFile string
}

type agentFile struct {
	ReferenceFilePath tomlString `toml:"reference_file_path"`
}

// parseAgentConfig parses a config.toml. A relative reference_file_path is
// taken relative to the directory of file.
func parseAgentConfig(file string, data []byte) (AgentFile, error) {
	var af agentFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&af)
	if err != nil {
		return AgentFile{}, tomlError(file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return AgentFile{}, &ConfigError{File: file, Line: lineOf(data, und[0]), Field: strconvQuote(und[0].String()),
			Problem: "is not a known key (known: reference_file_path)"}
	}
	p := string(af.ReferenceFilePath)
	if md.IsDefined("reference_file_path") {
		if strings.TrimSpace(p) == "" || strings.ContainsRune(p, 0) {
			return AgentFile{}, &ConfigError{File: file, Line: lineOf(data, toml.Key{"reference_file_path"}),
				Field: "reference_file_path", Problem: "must be a file path"}
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
	}
	return AgentFile{ReferenceFile: p}, nil
}

// LoadNode reads and parses a node.toml file.
func LoadNode(path string) (Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Node{}, fmt.Errorf("read node config: %w", err)
	}
	host, _ := os.Hostname()
	return parseNode(path, data, host)
}

// LoadAgentConfig reads and parses a config.toml file.
func LoadAgentConfig(path string) (AgentFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return AgentFile{}, fmt.Errorf("read agent config: %w", err)
	}
	return parseAgentConfig(path, data)
}

// tomlError turns a decoder error into a ConfigError with the key and its
// line. Every error the decoder returns here is a toml.ParseError: syntax,
// and (through tomlText) types and values too.
func tomlError(file string, err error) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &ConfigError{File: file, Problem: err.Error()}
	}
	return &ConfigError{File: file, Line: pe.Position.Line, Field: pe.LastKey, Problem: problemText(pe.LastKey, pe.Message)}
}

func problemText(field, msg string) string {
	if field == "" {
		return msg
	}
	return "is invalid: " + msg
}

// lineOf finds the line where key is set, for errors about a key the
// decoder gives no position for. 0 when it cannot tell.
func lineOf(data []byte, key toml.Key) int {
	if len(key) == 0 {
		return 0
	}
	last := key[len(key)-1]
	for i, line := range strings.Split(string(data), "\n") {
		l := strings.TrimSpace(line)
		for _, form := range []string{last, `"` + last + `"`, `'` + last + `'`} {
			if rest, ok := strings.CutPrefix(l, form); ok {
				if r := strings.TrimSpace(rest); strings.HasPrefix(r, "=") || strings.HasPrefix(r, ".") {
					return i + 1
				}
			}
		}
		if l == "["+strings.Join(key, ".")+"]" || l == "[["+strings.Join(key, ".")+"]]" {
			return i + 1
		}
	}
	return 0
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
