#!/bin/sh
# Writes the two stand-in tarballs this example ADDs (no internet here, so no real JDK or
# Tomcat): jdk.tar.gz with jdk/bin/java and apache-tomcat.tar.gz with a catalina.sh that
# serves webapps/ROOT with busybox httpd on 8080. Same bytes every run.
set -eu
cd "$(dirname "$0")"
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
mkdir -p "$t/jdk/bin" "$t/apache-tomcat/bin" "$t/apache-tomcat/webapps/ROOT"
printf '#!/bin/sh\necho "openjdk version \\"1.8.0-pybuild\\" (a stand-in for the example)"\n' >"$t/jdk/bin/java"
printf '#!/bin/sh\n# Stand-in for Tomcat: serve webapps/ROOT on 8080.\nexec httpd -f -p 8080 -h "$(dirname "$0")/../webapps/ROOT"\n' >"$t/apache-tomcat/bin/catalina.sh"
printf '<html><body>Hello from jdk-tomcat</body></html>\n' >"$t/apache-tomcat/webapps/ROOT/index.html"
chmod 755 "$t/jdk/bin/java" "$t/apache-tomcat/bin/catalina.sh"
for name in jdk apache-tomcat; do
  tar -C "$t" --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -cf - "$name" | gzip -n -9 >"$name.tar.gz"
done
