import subprocess
from helpers import *
def test_x(cache_proxy, origin):
    origin.responder = lambda req: http_response(200, [("Cache-Control", "max-age=60"), ("ETag", '"a"'), ("Connection", "X-Foo, close"), ("X-Foo", "1"), ("Keep-Alive", "timeout=5")], b"hello")
    for i in range(3):
        with cache_proxy.client() as c:
            r = c.exchange("GET", origin.url("/a"), [("Host", origin.authority)])
            print(r.raw_head.decode(), r.body)
    print(len(origin.requests))
    print(open(cache_proxy.access_log).read())
    print(subprocess.run(["mdb_dump", "-a", "-p", cache_proxy.cache_dir], capture_output=True, text=True).stdout)
