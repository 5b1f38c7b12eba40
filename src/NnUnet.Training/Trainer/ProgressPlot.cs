using ScottPlot;
using NnUnet.Core.IO;
using NnUnet.Core.Results;

namespace NnUnet.Training.Trainer;

/// <summary>nnU-Net's progress.png: losses with pseudo-Dice and its EMA on a second axis, epoch duration, learning rate.</summary>
public static class ProgressPlot
{
    public static void Save(TrainingCurves curves, string path)
    {
        int n = curves.Count;
        var epochs = new double[n];
        for (int i = 0; i < n; i++) epochs[i] = i;

        var figure = new Multiplot();
        figure.AddPlots(3);
        var losses = figure.GetPlot(0);
        var train = losses.Add.Scatter(epochs, curves.TrainLosses.ToArray(), Colors.Blue);
        train.LegendText = "loss_tr";
        var val = losses.Add.Scatter(epochs, curves.ValLosses.ToArray(), Colors.Red);
        val.LegendText = "loss_val";
        var dice = losses.Add.Scatter(epochs, curves.MeanForegroundDice.ToArray(), Colors.Green);
        dice.LegendText = "pseudo dice";
        dice.LinePattern = LinePattern.Dotted;
        dice.Axes.YAxis = losses.Axes.Right;
        var ema = losses.Add.Scatter(epochs, curves.EmaForegroundDice.ToArray(), Colors.Green);
        ema.LegendText = "pseudo dice (mov. avg.)";
        ema.Axes.YAxis = losses.Axes.Right;
        losses.Axes.Left.Label.Text = "loss";
        losses.Axes.Right.Label.Text = "pseudo dice";
        losses.ShowLegend(Alignment.UpperLeft);

        var time = figure.GetPlot(1);
        var seconds = time.Add.Scatter(epochs, curves.EpochSeconds.ToArray(), Colors.Blue);
        seconds.LegendText = "epoch duration";
        time.Axes.Left.Label.Text = "time [s]";
        time.ShowLegend(Alignment.UpperLeft);

        var lr = figure.GetPlot(2);
        var rates = lr.Add.Scatter(epochs, curves.LearningRates.ToArray(), Colors.Blue);
        rates.LegendText = "learning rate";
        lr.Axes.Left.Label.Text = "learning rate";
        lr.Axes.Bottom.Label.Text = "epoch";
        lr.ShowLegend(Alignment.UpperLeft);

        AtomicFile.Write(path, temporary => figure.SavePng(temporary, 1200, 1600));
    }
}
