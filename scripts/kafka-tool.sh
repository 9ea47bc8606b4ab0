#!/usr/bin/env bash
# Runs a Kafka command-line tool from the jars that scripts/setup.sh fetched (the
# Maven artifacts ship no kafka-topics.sh and friends).
#
#   scripts/kafka-tool.sh topics --bootstrap-server 127.0.0.1:19092 --list
#   scripts/kafka-tool.sh console-consumer --bootstrap-server 127.0.0.1:19092 \
#       --topic binance.raw --from-beginning --max-messages 3
#   scripts/kafka-tool.sh org.apache.kafka.tools.SomeOtherTool ...
#
# Aliases: topics, console-consumer, console-producer, consumer-groups, get-offsets,
# metadata-quorum, storage. Anything else is taken as a main class name.
# Logs go to stderr at WARN, so stdout carries only the tool's answer.
# Environment: KAFKA_LIBS [<repo>/.local/kafka/libs], KAFKA_TOOL_HEAP [256m].
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kafka_libs=${KAFKA_LIBS:-$repo/.local/kafka/libs}

if (($# == 0)); then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 2
fi

tool=$1
shift
case $tool in
    topics) main_class=org.apache.kafka.tools.TopicCommand ;;
    console-consumer) main_class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    console-producer) main_class=org.apache.kafka.tools.ConsoleProducer ;;
    consumer-groups) main_class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    get-offsets) main_class=org.apache.kafka.tools.GetOffsetShell ;;
    metadata-quorum) main_class=org.apache.kafka.tools.MetadataQuorumCommand ;;
    storage) main_class=kafka.tools.StorageTool ;;
    *.*) main_class=$tool ;;
    *) echo "kafka-tool: unknown tool '$tool' (see scripts/kafka-tool.sh with no arguments)" >&2; exit 2 ;;
esac

if [[ ! -f $kafka_libs/.pom-sha256 ]]; then
    # Its progress lines would otherwise mix with the tool's output.
    KAFKA_LIBS=$kafka_libs bash "$repo/scripts/setup.sh" kafka >&2
fi

# A tool lives for a few seconds: the C1 compiler alone starts it faster.
exec java -Xmx"${KAFKA_TOOL_HEAP:-256m}" -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$repo/scripts/kafka/log4j2.yaml" \
    -Dkafka.log.level=WARN -Dkafka.log.target=SYSTEM_ERR \
    -cp "$kafka_libs/*" "$main_class" "$@"
