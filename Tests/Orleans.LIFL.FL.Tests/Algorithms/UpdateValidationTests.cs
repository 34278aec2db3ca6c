using System.IO.Hashing;
using System.Runtime.InteropServices;
using Orleans.LIFL.Grains.FL.Algorithms;
using Xunit;

namespace Orleans.LIFL.FL.Tests.Algorithms;

/// <summary>Each problem an update can have is reported, first by shape, then finiteness, then norm, naming the detail.</summary>
public sealed class UpdateValidationTests
{
    private const int ModelLength = 7850;

    /// <summary>A finite update of the model's length within the bound has no problem.</summary>
    [Fact]
    public void A_good_update_has_no_problem()
    {
        var update = Reference.RandomVector(new Random(1), ModelLength, scale: 0.01);

        Assert.Null(UpdateValidation.Check(update, ModelLength, maxNorm: 10));
        Assert.Null(UpdateValidation.Check(update, ModelLength, maxNorm: null));
    }

    /// <summary>
    /// The checksum folded into the check, stretch by stretch, is the one-shot XxHash3 of the update's bytes (over
    /// several stretches and a partial last one), and a bad value past the first stretch is named by its index in the update.
    /// </summary>
    [Fact]
    public void The_check_hashes_the_update_it_checks()
    {
        const int length = 3 * 16_384 + 1_001;
        var update = Reference.RandomVector(new Random(2), length, scale: 0.01);
        var checksum = new XxHash3();

        Assert.Null(UpdateValidation.Check(update, length, maxNorm: null, checksum));
        Assert.Equal(XxHash3.HashToUInt64(MemoryMarshal.AsBytes(update.AsSpan())), checksum.GetCurrentHashAsUInt64());

        update[2 * 16_384 + 5] = float.NaN;
        Assert.Equal(
            new UpdateProblem(UpdateProblemKind.NonFinite, $"value at index {2 * 16_384 + 5} is NaN"),
            UpdateValidation.Check(update, length, maxNorm: null, new XxHash3()));
    }

    /// <summary>An update of another length is refused with both lengths.</summary>
    [Fact]
    public void Wrong_length_names_both_lengths()
    {
        var problem = UpdateValidation.Check(new float[1000], ModelLength, maxNorm: null);

        Assert.Equal(new UpdateProblem(UpdateProblemKind.WrongShape, "the update has 1,000 values; the model has 7,850"), problem);
    }

    /// <summary>NaN, +∞ and −∞ at the first, a middle and the last index are refused with the index and the value.</summary>
    [Theory]
    [InlineData(0, float.NaN, "NaN")]
    [InlineData(42, float.NaN, "NaN")]
    [InlineData(ModelLength - 1, float.NaN, "NaN")]
    [InlineData(0, float.PositiveInfinity, "+Infinity")]
    [InlineData(3925, float.NegativeInfinity, "-Infinity")]
    [InlineData(ModelLength - 1, float.NegativeInfinity, "-Infinity")]
    public void Non_finite_value_names_its_index_and_value(int index, float value, string shown)
    {
        var update = new float[ModelLength];
        update[index] = value;

        var problem = UpdateValidation.Check(update, ModelLength, maxNorm: 10);

        Assert.Equal(new UpdateProblem(UpdateProblemKind.NonFinite, $"value at index {index} is {shown}"), problem);
    }

    /// <summary>A norm above the bound is refused with the norm and the bound; a norm equal to the bound passes.</summary>
    [Fact]
    public void Norm_above_the_bound_names_norm_and_bound()
    {
        var update = new float[ModelLength];
        update[10] = 7.5f;
        update[20] = -10f;

        var problem = UpdateValidation.Check(update, ModelLength, maxNorm: 10);

        Assert.Equal(new UpdateProblem(UpdateProblemKind.NormTooLarge, "the update's L2 norm 12.5 exceeds the job's bound 10"), problem);
        Assert.Null(UpdateValidation.Check(update, ModelLength, maxNorm: 12.5));
        Assert.Null(UpdateValidation.Check(update, ModelLength, maxNorm: null));
    }

    /// <summary>A norm just above the bound is shown with the digits that tell it from the bound.</summary>
    [Fact]
    public void Norm_just_above_the_bound_is_shown_apart_from_it()
    {
        float[] update = [10.000001f];

        var problem = UpdateValidation.Check(update, 1, maxNorm: 10);

        const string Prefix = "the update's L2 norm ", Suffix = " exceeds the job's bound 10";
        var message = problem?.Message ?? "";
        Assert.StartsWith(Prefix, message);
        Assert.EndsWith(Suffix, message);
        Assert.True(double.Parse(message[Prefix.Length..^Suffix.Length]) > 10, message);
    }

    /// <summary>The shape is checked before finiteness, and finiteness before the norm.</summary>
    [Fact]
    public void Problems_are_reported_in_order_shape_finiteness_norm()
    {
        float[] shortAndBad = [float.NaN, 1e6f];
        float[] badAndLarge = [float.NaN, 1e6f, 0];

        Assert.Equal(UpdateProblemKind.WrongShape, UpdateValidation.Check(shortAndBad, 3, maxNorm: 1)?.Kind);
        Assert.Equal(UpdateProblemKind.NonFinite, UpdateValidation.Check(badAndLarge, 3, maxNorm: 1)?.Kind);
    }

    /// <summary>A model length or a norm bound that cannot be meant is refused with the value.</summary>
    [Fact]
    public void Bad_arguments_are_refused_with_the_value()
    {
        Assert.Equal("expectedLength", Assert.Throws<ArgumentOutOfRangeException>(() => UpdateValidation.Check([], 0, null)).ParamName);
        var negative = Assert.Throws<ArgumentOutOfRangeException>(() => UpdateValidation.Check([1], 1, -1));
        Assert.Contains("The norm bound must be positive and finite, not -1", negative.Message);
        var notANumber = Assert.Throws<ArgumentOutOfRangeException>(() => UpdateValidation.Check([1], 1, double.NaN));
        Assert.Contains("not NaN", notANumber.Message);
    }
}
