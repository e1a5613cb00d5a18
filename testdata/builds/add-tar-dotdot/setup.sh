# a tarball holding a symlink to ".." and a file beside it (git cannot hold the tar)
mkdir -p t/in && echo hi > t/in/file && ln -s .. t/in/up
tar -C t -cf t.tar in && rm -rf t
