package dinostream.model.dino;

import dinostream.model.graph.Graph;
import dinostream.model.graph.Tensor;

import java.util.ArrayList;
import java.util.List;

import static dinostream.model.graph.Elementwise.add;
import static dinostream.model.graph.Elementwise.div;
import static dinostream.model.graph.Elementwise.exp;
import static dinostream.model.graph.Elementwise.mul;
import static dinostream.model.graph.Elementwise.scale;
import static dinostream.model.graph.Elementwise.sub;
import static dinostream.model.graph.NN.logSoftmax;
import static dinostream.model.graph.Reductions.reduceMean;
import static dinostream.model.graph.Reductions.reduceSum;
import static dinostream.model.graph.Shapes.concat;
import static dinostream.model.graph.Shapes.split;

/**
 * The DINO loss (model/docs/algorithm.md §4): cross-entropy between the centred, sharpened teacher
 * distribution of each global crop and the student distribution of every other crop.
 */
public final class DinoLoss {
    private DinoLoss() {}

    /** loss, and the teacher's mean entropy and the student-teacher KL for monitoring. */
    public record Result(Tensor loss, Tensor teacherEntropy, Tensor kl) {}

    /**
     * @param student logits [V*B, K], crop-major rows
     * @param teacher logits of the two global crops [2*B, K] (no gradient)
     * @param center  [1, K], the centre before this step's update
     */
    public static Result forward(Graph g, DinoConfig c, Tensor student, Tensor teacher, Tensor center,
                                 Tensor teacherTemp, int views, long batch) {
        long k = student.dim(1);
        Tensor[] q = new Tensor[2];
        Tensor entropy = g.noGrad(() -> {
            Tensor logits = div(g, sub(g, teacher, center), teacherTemp);
            Tensor logq = logSoftmax(g, logits);
            Tensor probs = exp(g, logq);
            Tensor[] halves = split(g, probs, 0, batch, batch);
            q[0] = halves[0];
            q[1] = halves[1];
            return scale(g, reduceMean(g, reduceSum(g, mul(g, probs, logq), false, 1), false, 0), -1);
        });
        // Student crop v is scored against every teacher crop i != v: a weight matrix [V*B, K] with
        // rows q1 (v = 0), q0 (v = 1), q0 + q1 (locals), so the whole loss is one product and sum.
        Tensor targets = g.noGrad(() -> {
            List<Tensor> rows = new ArrayList<>(List.of(q[1], q[0]));
            if (views > 2) {
                Tensor both = add(g, q[0], q[1]);
                for (int v = 2; v < views; v++) rows.add(both);
            }
            return concat(g, 0, rows.toArray(new Tensor[0]));
        });
        Tensor logp = logSoftmax(g, scale(g, student, 1 / c.studentTemp));
        int pairs = 2 * views - 2;
        Tensor loss = scale(g, reduceSum(g, mul(g, targets, logp), false, 0, 1), -1.0 / (pairs * batch));
        Tensor kl = g.noGrad(() -> sub(g, loss, entropy));
        return new Result(loss, entropy, kl);
    }

    /** c <- m c + (1 - m) mean(teacher rows). */
    public static Tensor updateCenter(Graph g, DinoConfig c, Tensor center, Tensor teacher) {
        return g.noGrad(() -> add(g, scale(g, center, c.centerMomentum),
                scale(g, reduceMean(g, teacher, true, 0), 1 - c.centerMomentum)));
    }
}
