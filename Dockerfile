# syntax=docker/dockerfile:1
# albef-embed, CPU image. Models live in a volume at /models, or are baked in at build time:
#   docker build -t albef-embed .                                  # no model inside
#   docker build -t albef-embed:4m --build-arg BAKE_MODEL=albef_4m .
# Collections live in /collections (ALBEF_STORE, a LanceDB directory that `serve`, `index` and `search`
# all use): mount a volume there to keep them, or set ALBEF_STORE to a postgres:// URL.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY assets ./assets
# The CPU binaries ship in onnxruntime-node; its install script would only download CUDA libraries.
# package.json's allowScripts denies it on npm >= 11.19; this image's npm 10 reads the variable instead.
# LanceDB's optional transformers.js embedder (333 MB with its ONNX Runtime for the web) is imported
# only by an embedding function this service never uses (test/process/deploy.test.ts checks).
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/@huggingface node_modules/onnxruntime-web

FROM build AS models
ARG BAKE_MODEL=""
RUN mkdir -p /models && if [ -n "$BAKE_MODEL" ]; then node dist/cli/main.js fetch "$BAKE_MODEL" --out "/models/$BAKE_MODEL" --cache-dir /tmp/albef-cache && rm -rf /tmp/albef-cache; fi

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    ALBEF_HOST=0.0.0.0 \
    ALBEF_PORT=8080 \
    ALBEF_MODELS=/models \
    ALBEF_STORE=/collections
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/assets ./assets
COPY --from=models --chown=node:node /models /models
# Owned by the image's user, so that a fresh named volume mounted there is writable by it (a bind
# mount or a Kubernetes volume must be writable by uid 1000 itself).
RUN mkdir /collections && chown node:node /collections
USER node
VOLUME ["/models", "/collections"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s --retries=3 CMD ["node", "dist/cli/main.js", "healthcheck"]
# node is PID 1 and handles SIGTERM/SIGINT itself (drain, then exit 0).
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
