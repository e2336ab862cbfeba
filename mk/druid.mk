# Local Apache Druid (issue 10). Included from the Makefile: `include mk/druid.mk`.
# Uses PY, CONF and the AWS_* exports of the main Makefile.
DRUID_DEMO_ARGS ?=
.PHONY: druid-up druid-down druid-status druid-demo

druid-up: setup ## start Apache Druid on 127.0.0.1 (ZooKeeper, coordinator-overlord, broker, historical, indexer)
	@scripts/druid.sh up

druid-down: ## stop the local Druid and wipe its state
	@scripts/druid.sh down

druid-status: ## show whether the Druid processes run
	@scripts/druid.sh status || true

# Starts the local services and Druid when they are not running and stops afterwards only what
# it started (DRUID_KEEP=1 leaves Druid up for browsing: SQL at 127.0.0.1:8082).
druid-demo: setup ## flows -> enrichment job -> Kafka -> Druid; Druid SQL vs Delta side by side
	@svc_up=0; druid_up=0; \
	st=$$(scripts/services.sh status); \
	if grep -q 'kinesis: running' <<<"$$st" && grep -q 'kafka: running' <<<"$$st"; then svc_up=1; fi; \
	if scripts/druid.sh status >/dev/null; then druid_up=1; fi; \
	rc=0; \
	{ scripts/services.sh up && scripts/druid.sh up && \
	  $(PY) -m spark_jobs.jobs.druid_demo --conf $(CONF) $(DRUID_DEMO_ARGS); } || rc=$$?; \
	if [ $$druid_up = 0 ] && [ -z "$(DRUID_KEEP)" ]; then scripts/druid.sh down; fi; \
	if [ $$svc_up = 0 ]; then scripts/services.sh down; fi; \
	exit $$rc
