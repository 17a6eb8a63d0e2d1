# batchkeeper worker image. Debian-based on purpose: @temporalio/core-bridge ships glibc binaries only (no musl/Alpine).
# Stage 1 builds the package as apps get it (npm pack: dist/ and migrations/); stage 2 installs that tarball with its
# peers, as an app does, so the image holds no tooling, no TypeScript sources and no development dependency.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm pack --pack-destination /pkg && mv /pkg/batchkeeper-*.tgz /pkg/batchkeeper.tgz

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /pkg/batchkeeper.tgz /tmp/batchkeeper.tgz
RUN npm init -y >/dev/null \
  && npm install --omit=dev --no-audit --no-fund /tmp/batchkeeper.tgz \
       @temporalio/client@1.24.0 @temporalio/worker@1.24.0 @temporalio/activity@1.24.0 @temporalio/workflow@1.24.0 @temporalio/common@1.24.0 \
  && npm cache clean --force && rm /tmp/batchkeeper.tgz \
  && ln -s node_modules/batchkeeper/dist dist && ln -s node_modules/batchkeeper/migrations migrations

# Run unprivileged (the image's `node` user).
USER node
ENV NODE_ENV=production

CMD ["node", "dist/worker/main.js"]
