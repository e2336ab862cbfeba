"""Fleet simulator behind ``dredge simulate``: seeded, deterministic VPC flow logs with truth.

Public API::

    from spark_jobs.sim.runner import SimConfig, Summary, run
    from spark_jobs.sim.envelopes import ListSink, decode          # in-memory envelope sink
    from spark_jobs.sim.kinesis import KinesisSink, ensure_stream, kinesis_client
    from spark_jobs.sim.formats import V2_FIELDS, V5_FIELDS, header, log_format
    from spark_jobs.sim.inventory import SNAPSHOT_FIELDS

    summary = run(SimConfig(out=Path("data/sim"), minutes=5, apps=30), sink=None)

Layout under ``out``::

    ip-ranges.json  vpcs.json  apps.json
    flowlogs/AWSLogs/<account>/vpcflowlogs/<region>/YYYY/MM/DD/
        <account>_vpcflowlogs_<region>_<fl-id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz
    inventory/snapshot-<YYYYMMDDTHHMMSSZ>.jsonl   inventory/_manifest.jsonl
    truth/flows/part-NNNNN.parquet               truth/ownership.parquet

Modules: geo (regions, VPCs, AWS ranges), apps + fleet (apps, ASGs, life cycles), ipam
(address reuse), world (column arrays), records + traffic (what is logged when), formats
(text), emit + inventory (files), envelopes + kinesis (CloudWatch Logs -> Kinesis), runner.
"""
