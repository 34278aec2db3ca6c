namespace Orleans.LIFL.Client.Training;

public enum FashionMnistSplit
{
    /// <summary>The 60,000 training images ("train-*").</summary>
    Train,

    /// <summary>The 10,000 test images ("t10k-*").</summary>
    Test,
}
