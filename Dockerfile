# Build: docker build -t fly-autoscaler .
# The image holds one static-ish binary (rustls with compiled-in webpki roots: no OpenSSL, no
# CA bundle needed) on distroless/cc. Entrypoint `fly-autoscaler`, default command `serve`, as the
# Go image. Built without the `demo` feature: the Fly API simulator and the demo command do not
# ship in the production image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p fly-autoscaler --no-default-features \
 && cp target/release/fly-autoscaler /fly-autoscaler

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /fly-autoscaler /usr/local/bin/fly-autoscaler
EXPOSE 9090
ENTRYPOINT ["fly-autoscaler"]
CMD ["serve"]
