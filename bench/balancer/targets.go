//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/template"
	"time"
)

// target is one thing wrk and loadgen hit: a proxy, or a backend directly.
type target struct {
	name string // direct, hoist, haproxy, nginx, caddy
	url  string
	proc *proc // whose process tree's CPU is charged to the target
}

const (
	benchScope = "bench.prod.web"
	benchHost  = "bench.localhost"
)

// env is one benchmark run's temp dir, binaries and children.
type env struct {
	dir      string
	hoist    string // binaries
	backend  string
	loadgen  string
	ps       *procs
	token    string   // in every backend body, so readiness checks see our backends
	backends []string // host:port
	natsURL  string
}

// startBackends starts two backend processes on kernel-chosen ports.
func (e *env) startBackends(ctx context.Context) ([]*proc, error) {
	var out []*proc
	for i := range 2 {
		name := fmt.Sprintf("backend%d", i+1)
		line := make(chan string, 1)
		p, err := e.ps.start(name, []string{e.backend, "-listen", "127.0.0.1:0", "-body", "hoist-bench " + e.token}, nil, line)
		if err != nil {
			return nil, err
		}
		select {
		case l := <-line:
			addr, ok := strings.CutPrefix(l, "listening ")
			if !ok {
				return nil, fmt.Errorf("%s: unexpected first line %q (%s)", name, l, e.ps.logTail(name))
			}
			e.backends = append(e.backends, addr)
		case <-time.After(10 * time.Second):
			return nil, fmt.Errorf("%s did not start: %s", name, e.ps.logTail(name))
		}
		if err := waitHTTP(ctx, p, "http://"+e.backends[i]+"/", benchHost, e.token, 10*time.Second); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// startNATS runs `hoist server` and publishes the scope: a deploy with the
// bench host, and the two backends announced.
func (e *env) startNATS(ctx context.Context) error {
	line := make(chan string, 1)
	_, err := e.ps.start("nats", []string{e.hoist, "server", "--data", filepath.Join(e.dir, "nats"), "--listen", "127.0.0.1:0", "--name", "bench"}, nil, line)
	if err != nil {
		return err
	}
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(l, "ready: ")
		if !ok {
			return fmt.Errorf("hoist server: unexpected first line %q (%s)", l, e.ps.logTail("nats"))
		}
		e.natsURL = url
	case <-time.After(30 * time.Second):
		return fmt.Errorf("hoist server not ready: %s", e.ps.logTail("nats"))
	}
	for _, argv := range [][]string{
		{"deploy", benchScope, "--image", "bench", "--port", "8080", "--host", benchHost},
		{"announce", benchScope, e.backends[0], e.backends[1], "--host", benchHost}, // balancers take hosts from reports
	} {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, e.hoist, argv...)
		cmd.Env = append(os.Environ(), "HOIST_NATS_URL="+e.natsURL)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("hoist %s: %w: %s", argv[0], err, out)
		}
	}
	return nil
}

// startHoist runs `hoist balancer` (argv0 may be the profiled in-process
// balancer instead) with its defaults: access log off, info-level logs.
func (e *env) startHoist(ctx context.Context, name string, argv []string, extraEnv ...string) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	argv = append(argv, "--listen", listen)
	p, err := e.ps.start(name, argv, append([]string{"HOIST_NATS_URL=" + e.natsURL}, extraEnv...), nil)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, name, p, listen)
}

func (e *env) ready(ctx context.Context, name string, p *proc, listen string) (*target, error) {
	t := &target{name: name, url: "http://" + listen + "/", proc: p}
	if err := waitHTTP(ctx, p, t.url, benchHost, e.token, 30*time.Second); err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, e.ps.logTail(name))
	}
	return t, nil
}

// proxyConfig is what the configuration templates see.
type proxyConfig struct {
	Dir      string
	Listen   string // host:port
	Host     string // and its parts
	Port     int
	Backends []string
	Threads  int
}

func (e *env) writeConfig(name, text string, c proxyConfig) (string, error) {
	dir := filepath.Join(e.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	c.Dir = dir
	path := filepath.Join(dir, name+".conf")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := template.Must(template.New(name).Parse(text)).Execute(f, c); err != nil {
		return "", fmt.Errorf("%s config: %w", name, err)
	}
	return path, f.Close()
}

// startProxy writes name's configuration and starts it in the foreground.
func (e *env) startProxy(ctx context.Context, name string) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c := proxyConfig{Listen: fmt.Sprintf("127.0.0.1:%d", port), Host: "127.0.0.1", Port: port, Backends: e.backends, Threads: runtime.NumCPU()}
	var argv, extraEnv []string
	switch name {
	case "haproxy":
		path, err := e.writeConfig(name, haproxyConf, c)
		if err != nil {
			return nil, err
		}
		argv = []string{"haproxy", "-db", "-f", path}
	case "nginx":
		path, err := e.writeConfig(name, nginxConf, c)
		if err != nil {
			return nil, err
		}
		bin, err := exec.LookPath("nginx")
		if err != nil {
			bin = "/usr/sbin/nginx"
		}
		argv = []string{bin, "-p", filepath.Dir(path), "-c", path, "-e", filepath.Join(filepath.Dir(path), "error.log")}
	case "caddy":
		path, err := e.writeConfig(name, caddyConf, c)
		if err != nil {
			return nil, err
		}
		argv = []string{"caddy", "run", "--adapter", "caddyfile", "--config", path}
		dir := filepath.Dir(path)
		extraEnv = []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir}
	default:
		return nil, fmt.Errorf("unknown proxy %q", name)
	}
	p, err := e.ps.start(name, argv, extraEnv, nil)
	if err != nil {
		return nil, err
	}
	return e.ready(ctx, name, p, c.Listen)
}

// The three configurations do the same work as hoist's balancer: round
// robin over two backends, keep-alive to clients and upstreams, the
// client's Host passed on, X-Forwarded-For/-Proto (and -Host where cheap)
// added, no access log. Clients keep their connections as long as they
// like (nginx would otherwise close after 1000 requests).

const haproxyConf = `global
    nbthread {{.Threads}}
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 90s
    timeout server 60s
    timeout http-keep-alive 90s
    option http-keep-alive
    option forwardfor
    http-reuse always
frontend bench
    bind {{.Listen}}
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend web
backend web
    balance roundrobin
{{- range $i, $b := .Backends}}
    server b{{$i}} {{$b}}
{{- end}}
`

const nginxConf = `worker_processes {{.Threads}};
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 10000; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 90s;
    upstream web {
{{- range .Backends}}
        server {{.}};
{{- end}}
        keepalive 64;
        keepalive_requests 10000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }
    }
}
`

const caddyConf = `{
    admin off
    auto_https off
}
http://:{{.Port}} {
    bind {{.Host}}
    reverse_proxy {{range .Backends}}{{.}} {{end}}{
        lb_policy round_robin
        transport http {
            keepalive 90s
            keepalive_idle_conns_per_host 64
        }
    }
}
`
