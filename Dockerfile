# sluice: one self-contained binary in a small image; functions run as their own user.
#
#   docker build -t sluice .
#   docker run -d --name sluice -p 8080:8080 -v sluice-data:/var/lib/sluice sluice
#   docker logs sluice            # first start: the generated write keys, shown once
#
# See README.md ("Deploying", "Docker") for configuration, keys and reloads.

# Build stage: the toolchain as the project pins it (Bun comes from npm), then
# `npm run build` = `bun build --compile` → dist/sluice.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build \
 && ./dist/sluice --version \
 && mkdir -p /out/var/lib/sluice /out/etc \
 && chmod 0700 /out/var/lib/sluice
# The image's users: distroless's own, plus `sluice-fn`, the dedicated user function
# hosts run as (sluice switches to it; there is no useradd in the final image).
RUN printf '%s\n' \
      'root:x:0:0:root:/root:/sbin/nologin' \
      'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
      'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
      'sluice-fn:x:65533:65533:sluice functions:/nonexistent:/sbin/nologin' > /out/etc/passwd \
 && printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' 'sluice-fn:x:65533:' > /out/etc/group

# Final stage: glibc and libstdc++ (which the Bun runtime links against), nothing else:
# no shell, no package manager. The server starts as root so that it can run each
# function host as `sluice-fn` (SPEC 7: user code must not run as the server's user,
# who owns the config and the data); the hosts are also confined by Landlock and
# seccomp, and the data dir is 0700. Without root (`--user`), functions run as the
# server's user under Landlock and seccomp only, and the server says so at start.
FROM gcr.io/distroless/cc-debian12
COPY --from=build /out/etc/passwd /out/etc/group /etc/
COPY --from=build /src/dist/sluice /usr/local/bin/sluice
COPY --from=build /out/var/lib/sluice /var/lib/sluice

# The data dir (event log, state) and, unless SLUICE_CONFIG points elsewhere, the
# config: on first start `sluice serve` writes ./sluice.yaml here with fresh keys.
WORKDIR /var/lib/sluice
VOLUME ["/var/lib/sluice"]
# MIMALLOC_PURGE_HOLES_MIN_INTERVAL: the allocator setting `sluice serve` otherwise re-executes
# itself to get (README, "Allocator settings"); set here, the process starts with it.
ENV PORT=8080 \
    SLUICE_DATA_DIR=/var/lib/sluice/data \
    SLUICE_LOG_FORMAT=json \
    MIMALLOC_PURGE_HOLES_MIN_INTERVAL=1000
EXPOSE 8080

# `sluice health` GETs http://127.0.0.1:$PORT/health: no curl needed in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/sluice", "health"]

# Exec form: sluice is PID 1 and gets SIGTERM itself; it stops accepting, finishes
# in-flight requests, flushes the log and exits 0. SIGHUP reloads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
