# The image registry the swarm's nodes pull the project's images from: Docker's own registry
# (distribution 2.8, Debian's docker-registry package), storage on a volume.
# Build context: swarm/ (scripts/up --swarm builds and runs it).
FROM debian:bookworm-slim
ARG REGISTRY_VERSION=2.8.*
LABEL org.opencontainers.image.title="usbills image registry"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      "docker-registry=${REGISTRY_VERSION}" \
 && rm -rf /var/lib/apt/lists/* /etc/docker/registry \
 && install -d -o docker-registry -g docker-registry /var/lib/docker-registry
COPY registry-config.yml /etc/docker/registry/config.yml
USER docker-registry
EXPOSE 5000
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/5000 && printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'"]
ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]
