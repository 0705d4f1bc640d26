# One image for the four services (and the CLI and the sandbox); the chart picks the program by its
# arguments: `node /app/ingress.mjs`, `/app/ordering.mjs`, `/app/processor.mjs`, `/app/reconciler.mjs`.
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t qbo-webhooks:0.1.0 .
# The last stage's files are assembled by scripts/assemble-image.sh, which a test runs too
# (services/ingress/src/image.test.ts starts every service from what it assembles).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
 && bash scripts/assemble-image.sh /out

FROM ${NODE_IMAGE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/qbo-webhooks/qbo-webhooks
LABEL org.opencontainers.image.title="qbo-webhooks" \
      org.opencontainers.image.description="Receives QuickBooks Online webhooks and turns them into a complete, ordered, deduplicated change feed." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV NODE_ENV=production
WORKDIR /app
# Root owns the files and nobody can change them; the services run as an unprivileged numeric user
# (runAsNonRoot can check it) and write nothing but /tmp, so a read-only root filesystem works.
COPY --from=build --chown=0:0 --chmod=0555 /out/ /app/
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["node", "--enable-source-maps"]
CMD ["/app/ingress.mjs"]
