"""Candidates: golden record columns required, one open candidate per pair of golden records."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('matching', '0007_fill_golden_pairs'),
        ('mdm', '0004_lz4_json_columns'),
    ]

    operations = [
        migrations.AlterField(
            model_name='matchcandidate',
            name='left_golden',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AlterField(
            model_name='matchcandidate',
            name='right_golden',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='mdm.goldenrecord'),
        ),
        migrations.AddIndex(
            model_name='matchcandidate',
            index=models.Index(fields=['left_golden', 'right_golden'], name='candidate_goldens'),
        ),
        migrations.AddIndex(
            model_name='matchcandidate',
            index=models.Index(condition=models.Q(('status', 'open')), fields=['right_golden'], name='candidate_open_right_golden'),
        ),
        migrations.AddConstraint(
            model_name='matchcandidate',
            constraint=models.UniqueConstraint(condition=models.Q(('status', 'open')), fields=('left_golden', 'right_golden'), name='uniq_open_candidate_goldens'),
        ),
        migrations.AddConstraint(
            model_name='matchcandidate',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'open'), _negated=True), ('left_golden__lt', models.F('right_golden')), _connector='OR'), name='open_candidate_goldens_ordered'),
        ),
        migrations.AddConstraint(
            model_name='matchdecisionrecord',
            constraint=models.UniqueConstraint(fields=('decision', 'record'), name='uniq_decision_record'),
        ),
    ]
