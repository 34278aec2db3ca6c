using System.Numerics.Tensors;

namespace Orleans.LIFL.Client.Training;

internal static class SoftmaxCrossEntropy
{
    /// <summary>
    /// The sum over the rows of <paramref name="logits"/> of the cross-entropy of softmax(row) against the row's label;
    /// each row is replaced by the gradient of <paramref name="scale"/> times its loss with respect to it,
    /// <c>scale · (softmax(row) − onehot(label))</c>.
    /// </summary>
    public static double LossSumAndGradient(Span<float> logits, ReadOnlySpan<byte> labels, int classes, float scale)
    {
        var sum = 0.0;
        for (var i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            var label = labels[i];

            // Shifting by the largest logit keeps exp from overflowing and leaves the softmax unchanged.
            var max = TensorPrimitives.Max(row);
            var labelLogit = row[label] - max;
            TensorPrimitives.Subtract(row, max, row);
            TensorPrimitives.Exp(row, row);
            var total = TensorPrimitives.Sum(row);
            sum += Math.Log(total) - labelLogit;
            TensorPrimitives.Multiply(row, scale / total, row);
            row[label] -= scale;
        }

        return sum;
    }
}
