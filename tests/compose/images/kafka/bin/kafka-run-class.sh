#!/bin/bash
# java with Kafka's class path and log4j2 configuration. A tool logs warnings only, to stderr,
# so its stdout carries its output; a tool's JVM is sized and tuned to start quickly (the health
# check starts one every few seconds).
set -euo pipefail
main=$1
shift
if [[ $main == kafka.Kafka ]]; then
    logging=(-Dkafka.log.level=INFO -Dkafka.log.target=SYSTEM_OUT)
    jvm=(${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m})
else
    logging=(-Dkafka.log.level=WARN -Dkafka.log.target=SYSTEM_ERR)
    jvm=(${KAFKA_HEAP_OPTS:--Xmx256m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto)
fi
exec java "${jvm[@]}" "${logging[@]}" -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.yaml \
    -cp '/opt/kafka/libs/*' "$main" "$@"
