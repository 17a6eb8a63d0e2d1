# batchkeeper worker image. Debian-based on purpose: @temporalio/core-bridge ships glibc binaries only (no musl/Alpine).
FROM node:20-bookworm-slim

WORKDIR /app

# Dependencies first (cached layer). `npm ci` installs exactly package-lock.json.
COPY package.json package-lock.json ./
RUN npm ci && npm cache clean --force

COPY . .

# Run unprivileged (the image's `node` user).
USER node
ENV NODE_ENV=production

CMD ["npx", "tsx", "worker/main.ts"]
