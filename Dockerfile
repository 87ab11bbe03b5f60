# syntax=docker/dockerfile:1
# The operator image: `make image`, or `docker build -t agent-identity-operator:<version> .`
# Build: compile src/ to dist/ with the project's pinned TypeScript.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime: production dependencies and dist/ only; no compiler, no dev tools.
FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The "nonroot" uid/gid of distroless images; the Helm chart runs the pod as
# this user with a read-only root file system.
USER 65532:65532
# Metrics, health and readiness (--http-port); admission webhook (--webhook-port).
EXPOSE 8080 9443
ENTRYPOINT ["node", "dist/main.js"]
