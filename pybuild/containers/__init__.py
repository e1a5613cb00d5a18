"""Containers: records and state dirs, the monitor that outlives the CLI, lifecycle operations.

    <store root>/containers/<id>/
        config.json        the container as created (``model.ContainerConfig``), never changed
        state.json         status, pid, exit code, times (``model.State``), rewritten whole
        <id>-json.log      docker's json-file log: one {"log", "stream", "time"} per line
        upper/ work/       the overlay's upper and work dirs over the image's unpacked layers
        etc/               hosts, hostname and resolv.conf bind-mounted into the container
        stop               present while a stop is asked for: the monitor does not restart

A container runs under a monitor process (``monitor``), started detached from the CLI, as
conmon does: it runs the sandbox, writes the log, records the exit code and an OOM kill,
applies the restart policy and removes an ``--rm`` container. The CLI and the library only
read those files, signal the recorded pid, and start monitors.
"""
