mkdir -p x && echo one > x/one && tar --owner=0 --group=0 -cf one.tar x && rm -rf x
for n in a b; do mkdir -p $n && echo $n > $n/f && tar --owner=0 --group=0 -czf $n.tar.gz $n && rm -rf $n; done
