package dinostream.model.graph;

/**
 * The vector-Jacobian product of one recorded operation: given the gradients of its outputs
 * (an entry is null when that output does not reach the loss), emit the nodes computing the
 * gradients of its inputs (null for an input that needs none).
 */
@FunctionalInterface
public interface GradRule {
    Tensor[] apply(Tensor[] outputGrads);
}
