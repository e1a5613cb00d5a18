mkdir -p p/sub && echo hello > p/sub/h && ln -s sub/h p/link
tar --owner=3 --group=4 -cf t.tar p && rm -rf p
