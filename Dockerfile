# Images of the two services, built from source in a Rust image (the normal path, for a machine
# that can pull from a registry):
#
#   docker build --target provider -t oidc-stack/provider .
#   docker build --target webapp   -t oidc-stack/webapp .
#
# or simply `docker compose up --build`. Without a registry, scripts/build-images builds the same
# runtime images from binaries compiled on the host (docker/Dockerfile.local).
#
# The runtime images are `FROM scratch`: the binary, the shared libraries `ldd` says it loads
# (glibc, libgcc_s, and OpenSSL's libssl/libcrypto, which josekit links), CA certificates and an
# unprivileged user; docker/make-rootfs assembles them. The binary itself is the health check
# (`provider healthcheck`, `webapp healthcheck`), as there is no curl or shell in the image.
#
# Only classic Dockerfile syntax is used (no RUN --mount, no heredocs), so the file also builds
# with the legacy builder that docker-compose v1 drives.

ARG RUST_VERSION=1.95

# ---- dependency skeleton: manifests and stub sources, so the dependency build is cached --------
FROM rust:${RUST_VERSION}-bookworm AS skeleton
WORKDIR /src
COPY . .
RUN docker/cargo-skeleton /src /skeleton

# ---- build: release binaries and their runtime file systems ------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS build
# josekit builds against the system OpenSSL; bundled SQLite and ring need the C compiler the
# image already has.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# This layer changes only when a manifest or Cargo.lock does.
COPY --from=skeleton /skeleton/ ./
RUN cargo build --release --locked -p provider -p webapp
COPY . .
# The sources copied keep their own (older) modification times: touch them so cargo rebuilds the
# workspace crates instead of keeping the stubs it just built.
RUN find . -path ./target -prune -o \( -name '*.rs' -o -name Cargo.toml \) -type f -print0 \
      | xargs -0 touch \
 && cargo build --release --locked -p provider -p webapp \
 && docker/make-rootfs /out/provider target/release/provider \
 && docker/make-rootfs /out/webapp target/release/webapp

# ---- provider runtime ---------------------------------------------------------------------------
FROM scratch AS provider
COPY --from=build /out/provider/rootfs/ /
# /data holds the SQLite database, the cookie key and the signing keys: mount a volume there.
COPY --from=build --chown=10001:10001 /out/provider/writable/ /
USER 10001:10001
WORKDIR /data
ENV PROVIDER_ADDR=0.0.0.0:8000 \
    PROVIDER_DATABASE_URL=/data/provider.db
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/provider", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/provider"]
CMD ["serve"]
LABEL org.opencontainers.image.title="oidc-stack provider" \
      org.opencontainers.image.description="A small, self-hostable OpenID Connect provider" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

# ---- web app runtime ----------------------------------------------------------------------------
FROM scratch AS webapp
COPY --from=build /out/webapp/rootfs/ /
# /data holds the web app's SQLite database of sessions: mount a volume there.
COPY --chown=10001:10001 --from=build /out/webapp/writable/ /
USER 10001:10001
WORKDIR /data
ENV WEBAPP_ADDR=0.0.0.0:3000 \
    WEBAPP_DATABASE_URL=/data/webapp.db
EXPOSE 3000
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/webapp", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/webapp"]
CMD ["serve"]
LABEL org.opencontainers.image.title="oidc-stack webapp" \
      org.opencontainers.image.description="A relying-party web app that signs its users in with OpenID Connect" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
