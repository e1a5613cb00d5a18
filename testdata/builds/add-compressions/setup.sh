mkdir -p p/sub && echo hello > p/sub/h && chmod 640 p/sub/h
tar --owner=0 --group=0 -cf t.tar p
gzip -kn t.tar && bzip2 -k t.tar && xz -k t.tar && zstd -q t.tar -o t.tar.zst
mkdir -p dir && cp t.tar.gz dir/inner.tar.gz && rm -rf p
printf 'not really gzip' > notatar.gz
