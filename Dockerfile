# Build stage: compile the release binary (templates, static files, migrations and the PDF font
# are embedded).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY assets ./assets
RUN cargo build --release --locked --bin orderdesk

# Runtime stage: a small image running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/orderdesk --create-home orderdesk
COPY --from=build /src/target/release/orderdesk /usr/local/bin/orderdesk
# The font embedded in the PDFs is redistributed under its licence, which travels with it.
COPY assets/fonts/IPA_Font_License_Agreement_v1.0.txt /usr/share/doc/orderdesk/
USER orderdesk
WORKDIR /var/lib/orderdesk
# No built-in simulator in an image meant for real stores. Listening on 0.0.0.0 makes
# ORDERDESK_PUBLIC_URL required (serve refuses to start without it), so cookies get Secure and
# the OAuth callback points where people are. /metrics answers loopback only unless
# ORDERDESK_METRICS_ALLOW lists the scraper's address.
ENV ORDERDESK_DATA_DIR=/var/lib/orderdesk \
    ORDERDESK_LISTEN=0.0.0.0:8080 \
    ORDERDESK_SIMULATOR=off \
    ORDERDESK_LOG_FORMAT=json
VOLUME ["/var/lib/orderdesk"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["orderdesk"]
CMD ["serve"]
