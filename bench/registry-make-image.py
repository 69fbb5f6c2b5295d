#!/usr/bin/env python3
"""Writes an OCI image layout for the registry benchmark.

usage: registry-make-image.py DIR TAG LAYERS BYTES_PER_LAYER

Each layer is a gzip'd tar holding one file of incompressible bytes, so the
blob sizes are what the benchmark says they are.
"""
import gzip, hashlib, io, json, os, sys, tarfile

out, tag, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)


def put(data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


layers, diff_ids = [], []
for i in range(count):
    payload = os.urandom(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        info = tarfile.TarInfo("layer-%04d.bin" % i)
        info.size, info.mtime, info.mode = len(payload), 1700000000, 0o644
        t.addfile(info, io.BytesIO(payload))
    tar = buf.getvalue()
    diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    layers.append(put(gzip.compress(tar, compresslevel=1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"))

config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode(),
             "application/vnd.oci.image.config.v1+json")
manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": layers}).encode(),
               "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"org.opencontainers.image.ref.name": tag}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
print(manifest["digest"])
