# hoist in an image that holds nothing but its static binary.
#
# Single stage on purpose: nothing is pulled from a registry. Build the binary
# first, then the image:
#
#   task release                  # dist/hoist-linux-amd64 (and the others)
#   docker build -t hoist:local .  # or: task docker
#
# Run a server (its data in the volume). It listens beyond loopback, so it
# needs client authentication (docs/auth.md), or --insecure on a private
# network you trust:
#   docker run -d --name hoist-server -p 4222:4222 -v hoist-data:/data \
#     -v /etc/hoist/auth:/auth:ro -e HOIST_SERVER_AUTH=/auth hoist:local server
# A balancer against it:
#   docker run -d -p 8080:8080 -e HOIST_NATS_URL=nats://SERVER:4222 hoist:local balancer
#
# The agent starts containers, so it needs the Docker socket; run it on the
# host with packaging/systemd/hoist-agent.service instead.
FROM scratch

# Everything hoist keeps (the JetStream store, the agent's reference file)
# goes under HOME, which is the volume. A numeric user: scratch has no passwd.
COPY dist/hoist-linux-amd64 /hoist
# scratch has no mkdir: copying a directory creates /data owned by the user,
# which a new volume then inherits.
COPY --chown=65532:65532 packaging/docker/data /data
USER 65532:65532
ENV HOME=/data \
    HOIST_SERVER_DATA=/data/server \
    HOIST_SERVER_LISTEN=0.0.0.0:4222 \
    HOIST_BALANCER_LISTEN=0.0.0.0:8080 \
    HOIST_AGENT_AGENT_CHECK=0.0.0.0:9777
WORKDIR /data
VOLUME /data

# 4222 NATS clients (hoist server), 8080 HTTP (hoist balancer),
# 9777 HAProxy agent checks (hoist agent).
EXPOSE 4222 8080 9777
ENTRYPOINT ["/hoist"]
CMD ["--help"]
