mkdir -p pkg/bin && printf '#!/bin/sh\necho tool\n' > pkg/bin/tool && chmod 755 pkg/bin/tool
tar --owner=0 --group=0 -czf pkg.tar.gz pkg && rm -rf pkg
