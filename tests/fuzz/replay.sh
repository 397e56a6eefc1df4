#!/bin/sh
# make check: run every fuzz target's replay program over its seed corpus.
set -e
: "${srcdir:=.}"
for t in http_request http_response chunked config tls_peek proxy_proto pac credentials conn dir_filter h2_translate rate; do
	echo "replay $t"
	./tests/fuzz/replay_$t "$srcdir/tests/fuzz/corpus/$t"
done
