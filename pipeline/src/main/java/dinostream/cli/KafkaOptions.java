package dinostream.cli;

import picocli.CommandLine.Option;

import java.util.LinkedHashMap;
import java.util.Map;

/** Broker address and pass-through client settings, shared by the commands that talk to Kafka. */
final class KafkaOptions {
    @Option(names = "--bootstrap", paramLabel = "HOST:PORT", required = true, description = "Kafka bootstrap servers.")
    String bootstrap;

    @Option(names = "--kafka-property", paramLabel = "KEY=VALUE", mapFallbackValue = "",
            description = {"A Kafka client setting for every client of the command (repeatable): security, sizes.",
                    "Images over 1 MB need max.request.size (producer), max.partition.fetch.bytes (consumer)",
                    "and the topic's max.message.bytes raised together."})
    Map<String, String> properties = new LinkedHashMap<>();
}
