using Orleans.LIFL.Grains.MoE.Model;
using Xunit;

namespace Orleans.LIFL.MoE.Tests;

public sealed class MoeKernelsTests
{
    /// <summary>Row counts that are and are not multiples of four, and widths with and without a tail.</summary>
    public static TheoryData<int, int> MatrixShapes => new() { { 1, 8 }, { 4, 13 }, { 7, 256 }, { 768, 256 }, { 258, 771 } };

    /// <summary>
    /// The dot product is bit for bit the fixed order the kernel documents (eight lane sums, a fixed tree, then the
    /// tail), emulated here in scalar code: the order, not the hardware, decides the bits.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(64)]
    [InlineData(1001)]
    public void Dot_follows_its_fixed_order_bit_for_bit(int length)
    {
        var random = new Random(length);
        var a = Values(random, length);
        var b = Values(random, length);

        var lanes = new float[8];
        var i = 0;
        for (; i + 8 <= length; i += 8)
        {
            for (var lane = 0; lane < 8; lane++)
            {
                lanes[lane] += a[i + lane] * b[i + lane];
            }
        }

        var quad = new float[4];
        for (var lane = 0; lane < 4; lane++)
        {
            quad[lane] = lanes[lane] + lanes[lane + 4];
        }

        var expected = (quad[0] + quad[2]) + (quad[1] + quad[3]);
        for (; i < length; i++)
        {
            expected += a[i] * b[i];
        }

        Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(MoeKernels.Dot(a, b)));
        var exact = Enumerable.Range(0, length).Sum(k => (double)a[k] * b[k]);
        Assert.True(Math.Abs(MoeKernels.Dot(a, b) - exact) <= 1e-5 * (1 + Math.Abs(exact)), $"{MoeKernels.Dot(a, b)} vs {exact}");
    }

    /// <summary>
    /// The matrix-vector product (four rows at a time) gives each row's <see cref="MoeKernels.Dot"/> bit for bit, for
    /// row counts that are and are not multiples of four and widths with and without a tail.
    /// </summary>
    [Theory]
    [MemberData(nameof(MatrixShapes))]
    public void MatVec_gives_every_row_its_dot_product_bit_for_bit(int rows, int columns)
    {
        var random = new Random((rows * 1000) + columns);
        var weights = Values(random, rows * columns);
        var x = Values(random, columns);
        var y = new float[rows];

        MoeKernels.MatVec(weights, x, y);

        for (var row = 0; row < rows; row++)
        {
            var expected = MoeKernels.Dot(weights.AsSpan(row * columns, columns), x);
            Assert.True(
                BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(y[row]),
                $"row {row} of {rows}: {y[row]} vs Dot's {expected}");
        }

        Assert.Throws<ArgumentException>(() => MoeKernels.MatVec(weights, x, new float[rows + 1]));
    }

    /// <summary>
    /// A bfloat16 matrix gives, bit for bit, the float32 product of its widened values, for the same row counts and
    /// widths: bfloat16 weights change the bytes read, not the arithmetic.
    /// </summary>
    [Theory]
    [MemberData(nameof(MatrixShapes))]
    public void A_bfloat16_matrix_gives_its_widened_matrix_product_bit_for_bit(int rows, int columns)
    {
        var random = new Random((rows * 1000) + columns);
        var narrow = Values(random, rows * columns).Select(MoeKernels.Narrow).ToArray();
        var widened = narrow.Select(MoeKernels.Widen).ToArray();
        var x = Values(random, columns);
        var (y, expected) = (new float[rows], new float[rows]);

        MoeKernels.MatVec(narrow, x, y);
        MoeKernels.MatVec(widened, x, expected);

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), y.Select(BitConverter.SingleToInt32Bits));
        Assert.Throws<ArgumentException>(() => MoeKernels.MatVec(narrow, x, new float[rows + 1]));
    }

    /// <summary>Narrowing to bfloat16 rounds to the nearest (ties to even), keeps NaN a NaN, and widening is exact.</summary>
    [Fact]
    public void Bfloat16_narrows_to_the_nearest_and_widens_exactly()
    {
        Assert.Equal(0x3F80, MoeKernels.Narrow(1f));
        Assert.Equal(1f, MoeKernels.Widen(0x3F80));
        Assert.Equal(-2f, MoeKernels.Widen(MoeKernels.Narrow(-2f)));

        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: to even, 1; 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ and 1 + 2⁻⁶: to even, up.
        Assert.Equal(1f, MoeKernels.Widen(MoeKernels.Narrow(1f + MathF.Pow(2, -8))));
        Assert.Equal(1f + MathF.Pow(2, -6), MoeKernels.Widen(MoeKernels.Narrow(1f + (3 * MathF.Pow(2, -8)))));
        Assert.Equal(1f + MathF.Pow(2, -7), MoeKernels.Widen(MoeKernels.Narrow(1f + MathF.Pow(2, -7) + MathF.Pow(2, -10))));

        Assert.True(float.IsNaN(MoeKernels.Widen(MoeKernels.Narrow(float.NaN))));
        Assert.Equal(float.PositiveInfinity, MoeKernels.Widen(MoeKernels.Narrow(float.MaxValue)));

        var random = new Random(5);
        foreach (var value in Values(random, 1000))
        {
            var rounded = MoeKernels.Widen(MoeKernels.Narrow(value));
            Assert.True(Math.Abs(rounded - value) <= Math.Abs(value) * MathF.Pow(2, -8), $"{value} narrowed to {rounded}");
            Assert.Equal(MoeKernels.Narrow(value), MoeKernels.Narrow(rounded));
        }
    }

    /// <summary>
    /// A head's scores and weighted sum over a cache holding every head of a position together are, bit for bit, one
    /// <see cref="MoeKernels.Dot"/> and one <see cref="MoeKernels.AddScaled"/> per position, for heads with and
    /// without a tail past the vector lanes; a head that does not fit the rows is refused.
    /// </summary>
    [Theory]
    [InlineData(32, 8, 1)]
    [InlineData(32, 8, 37)]
    [InlineData(12, 3, 20)]
    public void A_heads_scores_and_weighted_sum_are_its_per_position_kernels_bit_for_bit(int headDim, int heads, int positions)
    {
        var random = new Random((headDim * 100) + positions);
        var stride = headDim * heads;
        var (keys, values) = (Values(random, positions * stride), Values(random, positions * stride));
        var q = Values(random, headDim);
        var weights = Values(random, positions);
        for (var head = 0; head < heads; head++)
        {
            var offset = head * headDim;
            var scores = new float[positions];
            MoeKernels.Scores(q, keys, stride, offset, 0.25f, scores);
            var output = Values(new Random(head), headDim);
            var expected = output.ToArray();
            MoeKernels.WeightedSum(weights, values, stride, offset, output);
            for (var t = 0; t < positions; t++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(MoeKernels.Dot(q, keys.AsSpan((t * stride) + offset, headDim)) * 0.25f), BitConverter.SingleToInt32Bits(scores[t]));
                MoeKernels.AddScaled(expected, weights[t], values.AsSpan((t * stride) + offset, headDim));
            }

            Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), output.Select(BitConverter.SingleToInt32Bits));
        }

        Assert.Throws<ArgumentException>(() => MoeKernels.Scores(q, keys, stride, stride - headDim + 1, 1f, new float[positions]));
        Assert.Throws<ArgumentException>(() => MoeKernels.WeightedSum(new float[positions + 1], values, stride, 0, new float[headDim]));
    }

    /// <summary>The vectorized y += a·x is the scalar loop's result element for element, tail included.</summary>
    [Theory]
    [InlineData(3)]
    [InlineData(32)]
    [InlineData(45)]
    public void AddScaled_matches_the_scalar_loop_bit_for_bit(int length)
    {
        var random = new Random(length);
        var x = Values(random, length);
        var y = Values(random, length);
        var expected = y.ToArray();
        const float A = 0.3721f;
        for (var i = 0; i < length; i++)
        {
            expected[i] += A * x[i];
        }

        MoeKernels.AddScaled(y, A, x);

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), y.Select(BitConverter.SingleToInt32Bits));
        Assert.Throws<ArgumentException>(() => MoeKernels.AddScaled(new float[length + 1], A, x));
    }

    /// <summary>exp in float arithmetic stays within 3·10⁻⁷ relative of the exact value over its normal range, with the documented edges.</summary>
    [Fact]
    public void Exp_is_accurate_and_has_its_documented_edges()
    {
        for (var x = -87f; x <= 88f; x += 0.0173f)
        {
            var exact = Math.Exp(x);
            var relative = Math.Abs(MoeKernels.Exp(x) - exact) / exact;
            Assert.True(relative < 3e-7, $"exp({x}) = {MoeKernels.Exp(x)}, exactly {exact}: relative error {relative}");
        }

        Assert.Equal(1f, MoeKernels.Exp(0));
        Assert.Equal(0f, MoeKernels.Exp(-100));
        Assert.Equal(float.PositiveInfinity, MoeKernels.Exp(100));
        Assert.True(float.IsNaN(MoeKernels.Exp(float.NaN)));
    }

    [Fact]
    public void Norm_softmax_and_silu_match_their_definitions()
    {
        var random = new Random(5);
        var x = Values(random, 37);
        var gain = Values(random, 37);
        var y = new float[37];
        MoeKernels.RmsNorm(x, gain, 1e-5f, y);
        var rms = Math.Sqrt((x.Sum(v => (double)v * v) / 37) + 1e-5);
        for (var i = 0; i < 37; i++)
        {
            Assert.Equal(x[i] / rms * gain[i], y[i], 1e-5);
        }

        var logits = new[] { 1f, 2f, 3f, -50f };
        var probabilities = logits.ToArray();
        MoeKernels.Softmax(probabilities);
        var total = logits.Sum(v => Math.Exp(v));
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(Math.Exp(logits[i]) / total, probabilities[i], 1e-6);
        }

        Assert.Equal(2.0 / (1 + Math.Exp(-2.0)), MoeKernels.Silu(2f), 1e-6);
        Assert.Equal(-3.0 / (1 + Math.Exp(3.0)), MoeKernels.Silu(-3f), 1e-6);
    }

    /// <summary>Top-k is descending, breaks ties by the lower index, and refuses a k it cannot give.</summary>
    [Fact]
    public void TopK_orders_by_value_then_index()
    {
        var indices = new int[3];
        MoeKernels.TopK([0.5f, 2f, 2f, -1f, 0.5f], indices);
        Assert.Equal([1, 2, 0], indices);
        Assert.Equal(1, MoeKernels.ArgMax([0f, 3f, 3f]));
        Assert.Throws<ArgumentOutOfRangeException>(() => MoeKernels.TopK([1f, 2f], new int[3]));
    }

    /// <summary>Rotary positions rotate each head's (i, i + half) pairs by position·θ^(−2i/d): norms kept, angles as defined.</summary>
    [Fact]
    public void Rope_rotates_pairs_by_their_frequency()
    {
        const int HeadDim = 8;
        var vector = Values(new Random(9), 2 * HeadDim);
        var original = vector.ToArray();
        var (cos, sin) = (new float[HeadDim / 2], new float[HeadDim / 2]);
        MoeKernels.RopeTables(7, HeadDim, 10_000, cos, sin);
        MoeKernels.Rope(vector, HeadDim, cos, sin);
        for (var head = 0; head < 2; head++)
        {
            for (var i = 0; i < HeadDim / 2; i++)
            {
                var angle = 7 * Math.Pow(10_000, -2.0 * i / HeadDim);
                var (a, b) = (original[(head * HeadDim) + i], original[(head * HeadDim) + i + (HeadDim / 2)]);
                Assert.Equal((a * Math.Cos(angle)) - (b * Math.Sin(angle)), vector[(head * HeadDim) + i], 1e-6);
                Assert.Equal((b * Math.Cos(angle)) + (a * Math.Sin(angle)), vector[(head * HeadDim) + i + (HeadDim / 2)], 1e-6);
            }
        }
    }

    private static float[] Values(Random random, int length) => [.. Enumerable.Range(0, length).Select(_ => (float)((random.NextDouble() * 2) - 1))];
}
