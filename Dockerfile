# syntax=docker/dockerfile:1
# The operator image: `make image`, or `docker build -t agent-identity-operator:<version> .`
# Build: compile src/ to dist/ with the project's pinned TypeScript.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the package's prepare script (the build) needs the sources, copied
# below so this layer stays cached; the pinned node devDependency's setup runs by itself.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild node
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and dist/ only; no compiler, no dev tools.
FROM node:24-slim
ENV NODE_ENV=production
# Two glibc malloc arenas instead of one per thread (8 x cores): the thread pool's
# TLS and key work otherwise leaves memory in arenas of their own. make bench-scale,
# 2,000 identities: RSS 141 -> 129 MiB after 20 s idle, same CPU. The benches read
# this line too.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: prepare would build with the compiler this stage lacks; dist/ comes
# from the build stage, and no production dependency has an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The "nonroot" uid/gid of distroless images; the Helm chart runs the pod as
# this user with a read-only root file system.
USER 65532:65532
# Metrics, health and readiness (--http-port); admission webhook (--webhook-port).
EXPOSE 8080 9443
# A 2 MB young generation: V8's default grows it to tens of MB during a burst
# of issuances and keeps it while idle (1,000 identities, 60 s idle: 300 MB RSS
# by default, 165 MB with this, same CPU per issuance). make bench-compare runs
# the operator with these flags too.
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/main.js"]
