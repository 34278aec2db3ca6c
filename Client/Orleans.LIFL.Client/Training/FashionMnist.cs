using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace Orleans.LIFL.Client.Training;

/// <summary>
/// Zalando's Fashion-MNIST: 28×28 grey-scale images of clothing in 10 classes, 60,000 for training and 10,000 for
/// testing, as Debian's <c>dataset-fashion-mnist</c> package installs them (four gzip-compressed IDX files).
/// </summary>
public static class FashionMnist
{
    /// <summary>The environment variable naming the directory of the four files, when they are not in <see cref="DefaultDirectory"/>.</summary>
    public const string DirectoryVariable = "LIFL_FASHION_MNIST";

    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> puts the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    public const int ImageSide = 28;

    public const int FeatureCount = ImageSide * ImageSide;

    public const int Classes = 10;

    // Lazy (execution and publication) so that callers racing for the same split decode its ~190 MB of floats once.
    private static readonly ConcurrentDictionary<(FashionMnistSplit Split, string Directory), Lazy<LabeledImages>> Loaded = new();

    /// <summary>
    /// The images of <paramref name="split"/> with features scaled to [0, 1], read once per process and directory and
    /// then shared (see <see cref="LabeledImages"/>).
    /// </summary>
    /// <param name="directory">Where the files are; by default <see cref="DirectoryVariable"/> if set, else <see cref="DefaultDirectory"/>.</param>
    /// <exception cref="FileNotFoundException">A file of the split is missing.</exception>
    /// <exception cref="InvalidDataException">A file is malformed, or the images and labels do not match.</exception>
    public static LabeledImages Load(FashionMnistSplit split, string? directory = null)
    {
        if (!Enum.IsDefined(split))
        {
            throw new ArgumentOutOfRangeException(nameof(split), split, "Fashion-MNIST has a Train and a Test split.");
        }

        var configured = Environment.GetEnvironmentVariable(DirectoryVariable);
        var fullPath = Path.GetFullPath(directory ?? (string.IsNullOrEmpty(configured) ? DefaultDirectory : configured));
        var key = (split, Path.TrimEndingDirectorySeparator(fullPath));
        var load = Loaded.GetOrAdd(key, static key => new Lazy<LabeledImages>(() => Read(key.Split, key.Directory)));
        try
        {
            return load.Value;
        }
        catch
        {
            // A Lazy keeps its exception; forget it so that a later call, after the files are installed, reads them.
            Loaded.TryRemove(KeyValuePair.Create(key, load));
            throw;
        }
    }

    private static LabeledImages Read(FashionMnistSplit split, string directory)
    {
        var prefix = split == FashionMnistSplit.Train ? "train" : "t10k";
        var imagesPath = Path.Combine(directory, $"{prefix}-images-idx3-ubyte.gz");
        var labelsPath = Path.Combine(directory, $"{prefix}-labels-idx1-ubyte.gz");
        foreach (var path in (ReadOnlySpan<string>)[imagesPath, labelsPath])
        {
            if (!File.Exists(path))
            {
                throw new FileNotFoundException(
                    $"Fashion-MNIST's {split} split is incomplete: '{path}' does not exist. Install Debian's dataset-fashion-mnist package " +
                    $"(apt-get install dataset-fashion-mnist; ./lifl installs it when missing), or set {DirectoryVariable} to a directory with the four files.",
                    path);
            }
        }

        var (imageShape, pixels) = IdxFile.Read(imagesPath, dimensions: 3);
        if (imageShape[1] != ImageSide || imageShape[2] != ImageSide)
        {
            throw new InvalidDataException($"'{imagesPath}' holds images of {imageShape[1]}×{imageShape[2]} pixels, not {ImageSide}×{ImageSide}.");
        }

        var (labelShape, labels) = IdxFile.Read(labelsPath, dimensions: 1);
        if (labelShape[0] != imageShape[0])
        {
            throw new InvalidDataException($"'{labelsPath}' has {labelShape[0]:N0} labels but '{imagesPath}' has {imageShape[0]:N0} images.");
        }

        var badLabel = labels.AsSpan().IndexOfAnyInRange((byte)Classes, byte.MaxValue);
        if (badLabel >= 0)
        {
            throw new InvalidDataException($"'{labelsPath}' gives example {badLabel:N0} the label {labels[badLabel]}; Fashion-MNIST's labels are 0 to {Classes - 1}.");
        }

        var features = new float[pixels.Length];
        TensorPrimitives.ConvertTruncating<byte, float>(pixels, features);
        TensorPrimitives.Divide(features, byte.MaxValue, features);
        return new LabeledImages(features, labels, FeatureCount, Classes);
    }
}
