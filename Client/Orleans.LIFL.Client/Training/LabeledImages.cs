namespace Orleans.LIFL.Client.Training;

/// <summary>
/// A labelled image classification data set held in memory: <see cref="Count"/> examples, each a row of
/// <see cref="FeatureCount"/> floats in <see cref="Features"/> (row-major) and a class in <see cref="Labels"/>.
/// </summary>
/// <remarks>
/// The arrays are exposed for speed, not for editing: the splits <see cref="FashionMnist.Load"/> returns are shared
/// by every caller in the process, so writing to them changes everyone's data.
/// </remarks>
public sealed class LabeledImages
{
    public LabeledImages(float[] features, byte[] labels, int featureCount, int classes)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentOutOfRangeException.ThrowIfLessThan(featureCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(classes, byte.MaxValue + 1);
        if (features.LongLength != (long)labels.Length * featureCount)
        {
            throw new ArgumentException(
                $"{labels.Length:N0} labels of {featureCount} features need {(long)labels.Length * featureCount:N0} feature values, not {features.LongLength:N0}.",
                nameof(features));
        }

        var outOfRange = classes > byte.MaxValue ? -1 : labels.AsSpan().IndexOfAnyInRange((byte)classes, byte.MaxValue);
        if (outOfRange >= 0)
        {
            throw new ArgumentException($"Label {outOfRange} is {labels[outOfRange]}, outside the {classes} classes.", nameof(labels));
        }

        Features = features;
        Labels = labels;
        FeatureCount = featureCount;
        Classes = classes;
    }

    /// <summary>The examples' features, <see cref="Count"/> rows of <see cref="FeatureCount"/> values.</summary>
    public float[] Features { get; }

    /// <summary>The examples' classes, each in [0, <see cref="Classes"/>).</summary>
    public byte[] Labels { get; }

    public int Count => Labels.Length;

    public int FeatureCount { get; }

    public int Classes { get; }

    /// <summary>The features of example <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Example(int index) => Features.AsSpan(checked(index * FeatureCount), FeatureCount);

    /// <summary>A copy of the examples at <paramref name="indices"/>, in that order.</summary>
    public LabeledImages Subset(ReadOnlySpan<int> indices)
    {
        var features = new float[(long)indices.Length * FeatureCount];
        var labels = new byte[indices.Length];
        for (var i = 0; i < indices.Length; i++)
        {
            var index = indices[i];
            if ((uint)index >= (uint)Count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), $"Index {index} (position {i}) is outside the {Count:N0} examples.");
            }

            Example(index).CopyTo(features.AsSpan(i * FeatureCount, FeatureCount));
            labels[i] = Labels[index];
        }

        return new LabeledImages(features, labels, FeatureCount, Classes);
    }
}
