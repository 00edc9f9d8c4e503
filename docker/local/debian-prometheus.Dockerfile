# A stand-in for the official prom/prometheus image (2.x), built from Debian's
# package for machines that cannot reach an image registry. It keeps the
# interface our Dockerfile relies on: /bin/prometheus and /bin/promtool (Debian
# merges /bin into /usr/bin), the config in /etc/prometheus/prometheus.yml,
# consoles in /usr/share/prometheus/consoles, their libraries in
# /usr/share/prometheus/console_libraries, data in /prometheus, user nobody,
# and the same entrypoint and flags.
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE}
# Debian ships the console libraries only as examples under /usr/share/doc,
# which slim images exclude: include them. They differ from upstream's: they
# load the graph scripts (rickshaw, d3, jquery) from Debian's libjs packages,
# which the package pulls in and serves under /classic/static.
RUN echo 'path-include /usr/share/doc/prometheus/examples/*' >/etc/dpkg/dpkg.cfg.d/prometheus-examples \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/share/prometheus /prometheus \
 && cp -r /usr/share/doc/prometheus/examples/consoles /usr/share/doc/prometheus/examples/console_libraries /usr/share/prometheus/ \
 && chown -R nobody:nogroup /etc/prometheus /prometheus
WORKDIR /prometheus
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", \
     "--storage.tsdb.path=/prometheus", \
     "--web.console.libraries=/usr/share/prometheus/console_libraries", \
     "--web.console.templates=/usr/share/prometheus/consoles"]
