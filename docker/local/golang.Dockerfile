# A stand-in for the official golang image, for machines that cannot reach an
# image registry: a Debian base plus the host's Go toolchain and CA bundle (the
# build context holds both, see docker/images.sh).
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE}
COPY go /usr/local/go
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOPATH=/go
WORKDIR /go
