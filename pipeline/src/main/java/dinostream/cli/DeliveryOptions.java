package dinostream.cli;

import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;

/** How the job's Kafka sinks deliver: shared by `train` and `embed`. */
final class DeliveryOptions {
    @Option(names = "--delivery", paramLabel = "exactly-once|at-least-once", defaultValue = "exactly-once",
            description = "Kafka transactions committed with each checkpoint (consumers read_committed), or at-least-once (default: ${DEFAULT-VALUE}).")
    String delivery;

    boolean exactlyOnce(CommandSpec spec) {
        return switch (delivery) {
            case "exactly-once" -> true;
            case "at-least-once" -> false;
            default -> throw new ParameterException(spec.commandLine(), "--delivery must be exactly-once or at-least-once, got " + delivery);
        };
    }
}
