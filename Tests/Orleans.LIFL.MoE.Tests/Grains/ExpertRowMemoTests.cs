using Orleans.LIFL.Grains.MoE;
using Xunit;

namespace Orleans.LIFL.MoE.Tests.Grains;

/// <summary>An expert replica's memo of its recent rows: an answer only for a row equal bit for bit, the newest rows kept.</summary>
public sealed class ExpertRowMemoTests
{
    private static float[] Row(int seed, int width = 8) => [.. Enumerable.Range(0, width).Select(i => MathF.Sin((seed * 31) + i))];

    private static void Add(ExpertRowMemo memo, float[] row, float[] answer) => memo.Add(row, answer, ExpertRowMemo.Fingerprint(row));

    [Fact]
    public void A_remembered_row_gives_its_answer_and_any_other_row_none()
    {
        var memo = new ExpertRowMemo(8);
        Add(memo, Row(1), Row(101));
        var answer = new float[8];
        Assert.True(memo.TryGet(Row(1), answer, out _));
        Assert.Equal(Row(101), answer);
        Assert.Equal(1, memo.Hits);

        // One bit off anywhere, or zero's other sign, is another row.
        foreach (var index in new[] { 0, 3, 7 })
        {
            var nudged = Row(1);
            nudged[index] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(nudged[index]) ^ 1);
            Assert.False(memo.TryGet(nudged, answer, out _));
        }

        var zeros = new float[8];
        Add(memo, zeros, Row(7));
        var negative = new float[8];
        negative[5] = -0f;
        Assert.False(memo.TryGet(negative, answer, out _));
        Assert.True(memo.TryGet(new float[8], answer, out _));
        Assert.Equal(Row(7), answer);
        Assert.Equal(2, memo.Hits);
    }

    [Fact]
    public void It_keeps_the_newest_rows_up_to_its_capacity()
    {
        var memo = new ExpertRowMemo(8);
        Assert.Equal(64, memo.Capacity);
        for (var i = 0; i <= memo.Capacity; i++)
        {
            Add(memo, Row(i), Row(1000 + i));
        }

        var answer = new float[8];
        Assert.False(memo.TryGet(Row(0), answer, out _));
        for (var i = 1; i <= memo.Capacity; i++)
        {
            Assert.True(memo.TryGet(Row(i), answer, out _));
            Assert.Equal(Row(1000 + i), answer);
        }

        // A newer answer to the same row is found (the older copy is never consulted first with a different answer:
        // the expert is deterministic, so both are the same).
        Add(memo, Row(5), Row(1005));
        Assert.True(memo.TryGet(Row(5), answer, out _));
        Assert.Equal(Row(1005), answer);
    }

    [Theory]
    [InlineData(256, 64)]
    [InlineData(4096, 8)]
    [InlineData(100_000, 1)]
    public void Its_capacity_keeps_it_within_its_budget(int width, int rows)
    {
        Assert.Equal(rows, new ExpertRowMemo(width).Capacity);
    }

    [Fact]
    public void Rows_of_another_width_are_refused()
    {
        var memo = new ExpertRowMemo(8);
        Assert.Contains("rows of 8 values was given a row of 4", Assert.Throws<ArgumentException>(() => Add(memo, new float[4], new float[8])).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => memo.TryGet(new float[8], new float[9], out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExpertRowMemo(0));
    }
}
