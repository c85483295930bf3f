# The wxgate container image: `docker build -t wxgate .` at the repository root.
# The build stage runs packaging/build.sh, which CI also runs on the host (so these
# steps cannot rot); the final image holds the binary only, runs as a non-root user,
# keeps its data in a volume and reports its health from /healthz.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN bash packaging/build.sh /out

FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 wxgate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/wxgate --shell /usr/sbin/nologin wxgate \
    && mkdir -p /var/lib/wxgate /etc/wxgate \
    && chown wxgate:wxgate /var/lib/wxgate \
    && chmod 0700 /var/lib/wxgate
COPY --from=build /out/usr/local/bin/wxgate /usr/local/bin/wxgate
COPY packaging/wxgate.container.toml /etc/wxgate/wxgate.toml
USER 10001:10001
VOLUME ["/var/lib/wxgate"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=6s --start-period=10s --retries=3 \
    CMD ["wxgate", "health", "--url", "http://127.0.0.1:8080"]
ENTRYPOINT ["wxgate"]
CMD ["serve", "--config", "/etc/wxgate/wxgate.toml"]
