# syntax=docker/dockerfile:1
# One image for every service of the ticket system; SERVICES picks what a container runs
# (shows, reservations, api, or a comma-separated mix; unset = all three in one process).
#
# NODE_IMAGE is the Node 22 base of both stages: Debian (glibc), like the Node binary of the `node`
# devDependency and the local base that scripts/local-images.sh builds where no image registry is
# reachable (`--build-arg NODE_IMAGE=localhost/tickets-base:bookworm`). Every step below works on any
# Node 22 image with a `node` user: no apt, apk or wget.

# ---- build: compile the TypeScript sources to dist/ -------------------------------------------
ARG NODE_IMAGE=node:22-bookworm-slim
FROM ${NODE_IMAGE} AS builder
WORKDIR /app

COPY package.json package-lock.json ./
# --ignore-scripts: compiling needs no install script. In particular the `node` devDependency's
# preinstall would fetch a second Node binary for node_modules/.bin/node; without the script that
# link dangles, so it is removed and the image's own node is used.
RUN npm ci --ignore-scripts --no-audit --no-fund \
	&& rm -f node_modules/.bin/node

COPY tsconfig.json tsconfig.build.json moleculer.config.ts ./
COPY lib ./lib
COPY mixins ./mixins
COPY services ./services
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json

# ---- runtime: production dependencies and the compiled code only ------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
	SERVICEDIR=dist/services
WORKDIR /app

COPY package.json package-lock.json ./
# --omit=dev leaves out the compilers, the test tools and the `node` devDependency;
# --ignore-scripts: no runtime dependency needs its install script (es5-ext's is only a notice).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
	&& npm cache clean --force

COPY --from=builder /app/dist ./dist
# The box-office page's static files, served by the api under /box-office/.
COPY public ./public
# Embedded (NeDB) mode keeps its files in ./data; the node user must be able to write there.
RUN mkdir -p data && chown node:node data

USER node

# PORT: the api gateway (GET /health). METRICS_PORT: Prometheus metrics of every node (/metrics).
EXPOSE 3000 3030

# A container running the api is healthy when GET /health answers 200 (connected to the cluster,
# shows and reservations reachable). Any other container is healthy when its metrics endpoint
# answers; with METRICS_PORT=0 such a container has nothing to probe and counts as healthy. The
# probe is Node's own fetch, so the image needs no wget (node:22-bookworm-slim has none).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
	CMD services=",$(echo "${SERVICES:-api}" | tr -d ' ')," ; \
	case "$services" in \
		*,api,*) url="http://127.0.0.1:${PORT:-3000}/health" ;; \
		*) [ "${METRICS_PORT:-3030}" = "0" ] && exit 0 ; url="http://127.0.0.1:${METRICS_PORT:-3030}/metrics" ;; \
	esac ; \
	node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url"

# Run moleculer-runner directly (not through npm) so that it is PID 1 and gets SIGTERM itself.
CMD ["node", "node_modules/moleculer/bin/moleculer-runner.js", "--config", "dist/moleculer.config.js"]
