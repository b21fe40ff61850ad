# Multi-stage build: compile tessera with the Rust toolchain, run it on a
# slim Debian with nothing but the binary and CA certificates. SQLite and
# libpq are compiled in and OpenSSL is vendored, so the runtime image needs
# no database client libraries.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY migrations migrations
COPY config config
COPY static static
COPY benches benches
RUN cargo build --release --locked --bin tessera

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/tessera --create-home tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY config /etc/tessera/config
WORKDIR /etc/tessera
USER tessera
ENV TESSERA_ENV=production \
    TESSERA__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["tessera"]
CMD ["serve"]
